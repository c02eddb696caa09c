import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { assembleSplit, type AssembleCounts } from './assemble-split.js';
import { planShards } from '../output/plan-shards.js';
import { ShardWriter, type ShardWriterState, type WrittenShard } from './shard-writer.js';
import { rowNbytes, type ConversationalRow } from '../output/to-conversational.js';
import type { SplitPart } from './encode-split.js';

export type { ShardWriterState, WrittenShard } from './shard-writer.js';

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
  /**
   * Set for a part of a multi-machine run: the rows of the split before this part's first one, were none rejected.
   * The part's files are then the pieces of the planned shards its rows fall in, cut on their row-group grid, and
   * `finish` leaves them as they are for `finalize` to put together.
   */
  start?: number;
}

export interface WrittenSplit {
  rows: number;
  /** Uncompressed size of the rows, as `datasets` counts them. */
  nbytes: number;
  files: WrittenShard[];
  /** Whether the shards had to be cut again at the end because the plan made up front did not hold. */
  resharded: boolean;
  /** When they were: rows taken in files whole, in row groups copied byte for byte, and encoded again. */
  assembled?: AssembleCounts;
  /** Until settled (see {@link settleSplit}): the folder of the dataset directory the files are in, cut again. */
  apart?: string;
  /** Until settled: the split's old files, which the files cut again replace. */
  replaces?: string[];
}

/**
 * Puts a split's files cut again in place of its old ones, and returns it settled. It may be called again on what a
 * run killed in the middle of it left (the checkpoint names the split so, see checkpoint.ts): a file already moved is
 * where it goes, an old file already removed is gone.
 */
export async function settleSplit(dir: string, split: WrittenSplit): Promise<WrittenSplit> {
  const { apart, replaces, ...settled } = split;
  if (apart === undefined) return settled;
  for (const file of split.files) {
    // Over the old file of the same name, when the count of shards did not change.
    await rename(path.join(dir, apart, path.basename(file.file)), path.join(dir, file.file)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  const kept = new Set(split.files.map((file) => file.file));
  for (const old of replaces ?? []) if (!kept.has(old)) await rm(path.join(dir, old), { force: true });
  await rm(path.join(dir, apart), { recursive: true, force: true });
  return settled;
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
    const { split, dir, rowGroupSize, arrowSchema, start } = options;
    this.#writer = new ShardWriter({ split, dir, plan: this.#plan, rowGroupSize, arrowSchema, ...(start === undefined ? {} : { start }) });
  }

  get rows(): number {
    return this.#rows;
  }

  /** Rows appended but waiting for their row group to fill. */
  get pendingRows(): readonly ConversationalRow[] {
    return this.#writer.pendingRows;
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

  /**
   * Closes the shards; when the plan did not hold, cuts them again, yielding rows done as it goes. A part's pieces are
   * left as they are. Shards cut again are written into a folder apart (`apart` in the result, which names each file
   * where it goes) and replace the old ones (`replaces`) only in {@link settleSplit}: the caller first records them in
   * its checkpoint, so that a run killed at any step from here is taken up with the cut done (see checkpoint.ts).
   */
  async *cut(): AsyncGenerator<number, WrittenSplit> {
    const { dir, split, maxShardSize, rowGroupSize } = this.#options;
    const written = await this.#writer.finish();
    const plan = planShards(this.#rows, this.#nbytes, maxShardSize);
    const holds = this.#rows === this.#options.plannedRows && plan.length === this.#plan.length;
    if (holds || this.#rows === 0 || this.#options.start !== undefined) {
      for (const shard of this.#rows === 0 ? written : []) await rm(path.join(dir, shard.file), { force: true });
      return { rows: this.#rows, nbytes: this.#nbytes, files: this.#rows === 0 ? [] : written, resharded: false };
    }
    const apart = `data.${split}-cut`;
    await rm(path.join(dir, apart), { recursive: true, force: true });
    const writer = new ShardWriter({ split, dir, plan, rowGroupSize, arrowSchema: this.#options.arrowSchema, folder: apart });
    const assembled: AssembleCounts = { linked: 0, copied: 0, rewritten: 0 };
    let files: WrittenShard[];
    try {
      const steps = assembleSplit(
        written.map((shard) => ({ path: path.join(dir, shard.file), rows: shard.rows, crc: shard.crc })),
        writer,
        rowGroupSize,
      );
      for (;;) {
        const step = await steps.next();
        if (step.done === true) {
          files = step.value;
          break;
        }
        assembled[step.value.how] += step.value.rows;
        yield step.value.rows;
      }
    } catch (error) {
      await writer.abort();
      throw error;
    }
    return {
      rows: this.#rows,
      nbytes: this.#nbytes,
      files: files.map((file) => ({ ...file, file: `data/${path.basename(file.file)}` })),
      resharded: true,
      assembled,
      apart,
      replaces: written.map((shard) => shard.file),
    };
  }

  /** {@link cut}, then {@link settleSplit}: the split's files in place. */
  async *finish(): AsyncGenerator<number, WrittenSplit> {
    return settleSplit(this.#options.dir, yield* this.cut());
  }

  async abort(): Promise<void> {
    await this.#writer.abort();
  }
}
