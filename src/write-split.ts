import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { outputHuggingfaceMetadata } from './output-features.js';
import { ShardSink, type SinkState } from './shard-sink.js';
import { planShards, shardName } from './plan-shards.js';
import { fileBuffer, readFooter } from './read-column-pages.js';
import { rowNbytes, type ConversationalRow } from './to-conversational.js';
import type { SplitPart } from './types.js';

export interface WrittenShard {
  /** Path relative to the dataset directory, `data/train-00000-of-00001.parquet`. */
  file: string;
  rows: number;
  /** Size of the file on disk. */
  size: number;
  /** CRC-32 of the file. */
  crc: number;
}

/** Where a shard writer stands, on disk: the shards it closed and the one it is writing (see {@link SinkState}). */
export interface ShardWriterState {
  shard: number;
  /** Rows the open shard still takes (its plan's count less the rows in its file). */
  left: number;
  shards: WrittenShard[];
  open: { file: string; sink: SinkState } | null;
}

/** Where a split's writer stands on disk: rows and bytes in its files, and its shard writer's state. */
export interface SplitWriterState {
  rows: number;
  nbytes: number;
  writer: ShardWriterState;
}

export interface SplitWriterOptions {
  split: string;
  /** The dataset directory (shards go under `data/`). */
  dir: string;
  /** Rows the split is planned to have (before any is rejected). */
  plannedRows: number;
  /** Uncompressed bytes the split is expected to have, estimated from the input's footers. */
  estimatedNbytes: number;
  maxShardSize: number;
  rowGroupSize: number;
  /** The footer's `ARROW:schema` value (from `outputArrowSchemaValue`). */
  arrowSchema: string;
}

export interface WrittenSplit {
  rows: number;
  /** Uncompressed size of the rows, as `datasets` counts them. */
  nbytes: number;
  files: WrittenShard[];
  /** Whether the shards had to be cut again at the end because the plan made up front did not hold. */
  resharded: boolean;
}

/** The rows of a shard this tool wrote, read back a row group at a time (to cut the shards again). */
async function* readShardRows(file: string): AsyncGenerator<ConversationalRow[]> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = await fileBuffer(handle, size);
    const metadata = await readFooter(handle, size);
    let rowStart = 0;
    for (const group of metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows);
      const rows = (await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors, utf8: false })) as unknown as ConversationalRow[];
      rowStart = rowEnd;
      yield rows;
    }
  } finally {
    await handle.close();
  }
}

/** Writes rows, arriving in order, into contiguous shards of the given row counts. */
class ShardWriter {
  readonly #split: string;
  readonly #dir: string;
  readonly #plan: number[];
  readonly #rowGroupSize: number;
  readonly #arrowSchema: string;
  readonly #shards: WrittenShard[] = [];
  #sink: ShardSink | null = null;
  #shard = 0;
  #left = 0;

  /** The folder of `dir` the shards go in. */
  readonly #data: string;

  constructor(split: string, dir: string, plan: number[], rowGroupSize: number, arrowSchema: string, data = 'data') {
    this.#data = data;
    this.#split = split;
    this.#dir = dir;
    this.#plan = plan;
    this.#rowGroupSize = rowGroupSize;
    this.#arrowSchema = arrowSchema;
  }

  /** Takes up where `state` left off: its closed shards kept, its open one cut back to what the state holds. */
  async resume(state: ShardWriterState): Promise<void> {
    this.#shard = state.shard;
    this.#left = state.left;
    this.#shards.push(...state.shards);
    if (state.open !== null) this.#sink = await ShardSink.resume(path.join(this.#dir, state.open.file), this.#sinkOptions(), state.open.sink);
  }

  /** Rows written but not yet in the file (see {@link ShardSink.pendingRows}). */
  get pendingRows(): readonly ConversationalRow[] {
    return this.#sink?.pendingRows ?? [];
  }

  /** Where the writer stands on disk; the pending rows are not in it (they are counted as still to come). */
  state(): ShardWriterState {
    const sink = this.#sink;
    return {
      shard: this.#shard,
      left: this.#left + (sink?.pendingRows.length ?? 0),
      shards: [...this.#shards],
      open: sink === null ? null : { file: this.#relative(sink.path), sink: sink.state() },
    };
  }

  #relative(file: string): string {
    return path.relative(this.#dir, file).split(path.sep).join('/');
  }

  #sinkOptions(): { rowGroupSize: number; metadata: Map<string, string> } {
    return {
      rowGroupSize: this.#rowGroupSize,
      metadata: new Map([
        ['ARROW:schema', this.#arrowSchema],
        ['huggingface', outputHuggingfaceMetadata],
      ]),
    };
  }

  /** Appends rows; cuts them where a shard ends. Rows past the plan go to the last shard. */
  async write(data: ConversationalRow[]): Promise<void> {
    const rows = data.length;
    let offset = 0;
    while (offset < rows) {
      if (this.#sink === null) await this.#openNext();
      const last = this.#shard === this.#plan.length - 1;
      const take = last ? rows - offset : Math.min(this.#left, rows - offset);
      await this.#sink?.write(take === rows ? data : data.slice(offset, offset + take));
      offset += take;
      this.#left -= take;
      if (this.#left <= 0 && !last) await this.#closeCurrent();
    }
  }

  async finish(): Promise<WrittenShard[]> {
    await this.#closeCurrent();
    return this.#shards;
  }

  async abort(): Promise<void> {
    await this.#sink?.abort();
    this.#sink = null;
  }

  async #openNext(): Promise<void> {
    const name = shardName(this.#split, this.#shard, this.#plan.length);
    await mkdir(path.join(this.#dir, this.#data), { recursive: true });
    this.#sink = await ShardSink.open(path.join(this.#dir, this.#data, name), this.#sinkOptions());
    this.#left = this.#plan[this.#shard] ?? 0;
  }

  async #closeCurrent(): Promise<void> {
    const sink = this.#sink;
    if (sink === null) return;
    this.#sink = null;
    const { rows, crc } = await sink.close();
    this.#shards.push({ file: this.#relative(sink.path), rows, size: (await stat(sink.path)).size, crc });
    this.#shard++;
  }
}

/**
 * Writes one split as parquet shards with the layout `push_to_hub` gives: `floor(bytes / maxShardSize) + 1` contiguous
 * shards of even row counts, `rowGroupSize` rows per row group, the `huggingface` features in the footer.
 *
 * The shard count depends on the split's size, known only at the end; so rows are written as they arrive into shards
 * planned from the estimate made from the input's footers and the planned row count. When the end shows a different
 * layout (a row was rejected, or the size crossed a shard boundary the estimate did not), `finish` reads the shards
 * back and cuts them again. Usually nothing is rewritten.
 */
export class SplitWriter {
  readonly #options: SplitWriterOptions;
  readonly #plan: number[];
  readonly #writer: ShardWriter;
  #rows = 0;
  #nbytes = 0;

  constructor(options: SplitWriterOptions) {
    this.#options = options;
    this.#plan = planShards(options.plannedRows, options.estimatedNbytes, options.maxShardSize);
    this.#writer = new ShardWriter(options.split, options.dir, this.#plan, options.rowGroupSize, options.arrowSchema);
  }

  get rows(): number {
    return this.#rows;
  }

  /** Takes up where a dead run's {@link state} left off (its files checked by the caller). */
  async resume(state: SplitWriterState): Promise<void> {
    this.#rows = state.rows;
    this.#nbytes = state.nbytes;
    await this.#writer.resume(state.writer);
  }

  /**
   * Where the split stands on disk, for a run that takes it up after a crash. Rows waiting for their row group are
   * not in it: `pending` says how many, the last rows appended.
   */
  state(): { state: SplitWriterState; pending: number } {
    const pending = this.#writer.pendingRows;
    let pendingNbytes = 0;
    for (const row of pending) pendingNbytes += rowNbytes(row);
    return { state: { rows: this.#rows - pending.length, nbytes: this.#nbytes - pendingNbytes, writer: this.#writer.state() }, pending: pending.length };
  }

  async append(part: SplitPart): Promise<void> {
    this.#rows += part.rows;
    this.#nbytes += part.nbytes;
    await this.#writer.write(part.data);
  }

  /** Closes the shards; when the plan did not hold, cuts them again, yielding rows rewritten as it goes. */
  async *finish(): AsyncGenerator<number, WrittenSplit> {
    const { dir, split, maxShardSize, rowGroupSize } = this.#options;
    const written = await this.#writer.finish();
    const plan = planShards(this.#rows, this.#nbytes, maxShardSize);
    const holds = this.#rows === this.#options.plannedRows && plan.length === this.#plan.length;
    if (holds || this.#rows === 0) {
      for (const shard of this.#rows === 0 ? written : []) await rm(path.join(dir, shard.file), { force: true });
      return { rows: this.#rows, nbytes: this.#nbytes, files: this.#rows === 0 ? [] : written, resharded: false };
    }
    // The new shards are written apart, and the old ones removed only once they are all there: until then the old
    // ones are what the run's last checkpoint holds, for a run killed now to take up.
    const apart = `data.${split}-cut`;
    await rm(path.join(dir, apart), { recursive: true, force: true });
    const writer = new ShardWriter(split, dir, plan, rowGroupSize, this.#options.arrowSchema, apart);
    let files: WrittenShard[];
    try {
      for (const shard of written) {
        for await (const rows of readShardRows(path.join(dir, shard.file))) {
          await writer.write(rows);
          yield rows.length;
        }
      }
      files = await writer.finish();
    } catch (error) {
      await writer.abort();
      throw error;
    }
    for (const shard of written) await rm(path.join(dir, shard.file), { force: true });
    for (const file of files) await rename(path.join(dir, file.file), path.join(dir, 'data', path.basename(file.file)));
    await rm(path.join(dir, apart), { recursive: true, force: true });
    return { rows: this.#rows, nbytes: this.#nbytes, files: files.map((file) => ({ ...file, file: `data/${path.basename(file.file)}` })), resharded: true };
  }

  async abort(): Promise<void> {
    await this.#writer.abort();
  }
}
