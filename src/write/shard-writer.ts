import { copyFile, link, mkdir, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { RowGroup } from 'hyparquet';
import { outputHuggingfaceMetadata } from '../output/output-features.js';
import { ShardFile, type ShardFileOptions, type SinkState } from './shard-file.js';
import { shardName } from '../output/plan-shards.js';
import type { ConversationalRow } from '../output/to-conversational.js';

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

export interface ShardWriterOptions {
  split: string;
  /** The dataset directory. */
  dir: string;
  /** Rows of each shard, in order. */
  plan: number[];
  rowGroupSize: number;
  /** The footer's `ARROW:schema` value. */
  arrowSchema: string;
  /** The folder of `dir` the shards go in. Default `data`. */
  folder?: string;
  /**
   * Rows of the split that come before the first row written here: a part of a multi-machine run writes a stretch of
   * the split, starting in the middle of some shard. Its files are then pieces of the planned shards, their row groups
   * cut where the whole shard's are. Default 0.
   */
  start?: number;
}

/** Makes `to` the same file as `from`: a hard link where the filesystem allows one, else a copy. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  await rm(to, { force: true });
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

/**
 * Writes rows, arriving in order, into contiguous shards of the planned row counts, `rowGroupSize` rows a row group
 * counted from each shard's start. Rows past the plan go to the last shard. Besides rows, it takes whole row groups
 * ({@link copyRowGroup}) and whole shards ({@link takeWhole}) of files written the same way, where they land exactly
 * where its own would: that is how shards are cut again, or put together from the pieces of a multi-machine run,
 * without encoding again what is already encoded.
 */
export class ShardWriter {
  readonly #options: ShardWriterOptions;
  readonly #folder: string;
  readonly #shards: WrittenShard[] = [];
  /** The shard the first row goes to, and how many of its rows come before it (see `start`). */
  readonly #firstShard: number;
  readonly #firstOffset: number;
  #sink: ShardFile | null = null;
  #shard: number;
  #left = 0;

  constructor(options: ShardWriterOptions) {
    this.#options = options;
    this.#folder = options.folder ?? 'data';
    let shard = 0;
    let offset = options.start ?? 0;
    for (; shard < options.plan.length - 1 && offset >= (options.plan[shard] ?? 0); shard++) offset -= options.plan[shard] ?? 0;
    this.#firstShard = shard;
    this.#firstOffset = offset;
    this.#shard = shard;
  }

  /** Takes up where `state` left off: its closed shards kept, its open one cut back to what the state holds. */
  async resume(state: ShardWriterState): Promise<void> {
    this.#shard = state.shard;
    this.#left = state.left;
    this.#shards.push(...state.shards);
    if (state.open !== null) this.#sink = await ShardFile.resume(path.join(this.#options.dir, state.open.file), this.#sinkOptions(), state.open.sink);
  }

  /** Rows written but not yet in the file (see {@link ShardFile.pendingRows}). */
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
    return path.relative(this.#options.dir, file).split(path.sep).join('/');
  }

  #isLast(): boolean {
    return this.#shard >= this.#options.plan.length - 1;
  }

  /** Rows the shard being written (or, between shards, the next one) still takes. */
  #room(): number {
    if (this.#sink !== null) return this.#left;
    return (this.#options.plan[this.#shard] ?? 0) - (this.#shard === this.#firstShard ? this.#firstOffset : 0);
  }

  #sinkOptions(): ShardFileOptions {
    const { rowGroupSize, arrowSchema } = this.#options;
    return {
      rowGroupSize,
      gridOffset: this.#shard === this.#firstShard ? this.#firstOffset % rowGroupSize : 0,
      metadata: new Map([
        ['ARROW:schema', arrowSchema],
        ['huggingface', outputHuggingfaceMetadata],
      ]),
    };
  }

  /** Appends rows; cuts them where a shard ends. */
  async write(data: ConversationalRow[]): Promise<void> {
    const rows = data.length;
    let offset = 0;
    while (offset < rows) {
      if (this.#sink === null) await this.#openNext();
      const last = this.#isLast();
      const take = last ? rows - offset : Math.min(this.#left, rows - offset);
      await this.#sink?.write(take === rows ? data : data.slice(offset, offset + take));
      offset += take;
      this.#left -= take;
      if (this.#left <= 0 && !last) await this.#closeCurrent();
    }
  }

  /**
   * Whether a row group of `rows` rows appended now would be one of this writer's own: it starts where one of them
   * starts, and is full or ends its shard.
   */
  canCopy(rows: number): boolean {
    if (this.#sink !== null && this.#sink.pendingRows.length > 0) return false;
    if (this.#sink === null && this.#shard === this.#firstShard && this.#firstOffset % this.#options.rowGroupSize !== 0) return false;
    const room = this.#room();
    return rows === this.#options.rowGroupSize ? rows <= room : rows === room;
  }

  /** Appends a row group of `source` byte for byte; only where {@link canCopy} says it fits. */
  async copyRowGroup(source: FileHandle, group: RowGroup): Promise<void> {
    const rows = Number(group.num_rows);
    if (!this.canCopy(rows)) throw new Error(`a row group of ${rows} rows does not fit here`);
    if (this.#sink === null) await this.#openNext();
    await this.#sink?.copyRowGroup(source, group);
    this.#left -= rows;
    if (this.#left <= 0 && !this.#isLast()) await this.#closeCurrent();
  }

  /** Rows of the next shard when the writer stands between shards (so a whole one could be taken), else null. */
  get wholeShardRows(): number | null {
    if (this.#sink !== null || this.#shard >= this.#options.plan.length) return null;
    if (this.#shard === this.#firstShard && this.#firstOffset > 0) return null;
    return this.#options.plan[this.#shard] ?? null;
  }

  /**
   * Takes a file that is a whole shard of this writer's, written the same way ({@link wholeShardRows} rows, row groups
   * cut from its start), as that shard: hard-linked where the filesystem allows, else copied.
   */
  async takeWhole(file: string, crc: number): Promise<void> {
    const name = shardName(this.#options.split, this.#shard, this.#options.plan.length);
    const target = path.join(this.#options.dir, this.#folder, name);
    await mkdir(path.dirname(target), { recursive: true });
    await linkOrCopy(file, target);
    this.#shards.push({ file: this.#relative(target), rows: this.#options.plan[this.#shard] ?? 0, size: (await stat(target)).size, crc });
    this.#shard++;
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
    const { split, plan, dir } = this.#options;
    const name = shardName(split, this.#shard, plan.length);
    await mkdir(path.join(dir, this.#folder), { recursive: true });
    this.#left = this.#room();
    this.#sink = await ShardFile.open(path.join(dir, this.#folder, name), this.#sinkOptions());
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
