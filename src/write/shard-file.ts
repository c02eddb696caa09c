import { rm, type FileHandle } from 'node:fs/promises';
import type { RowGroup } from 'hyparquet';
import { ParquetWriter } from 'hyparquet-writer';
import { OutputError } from '../errors.js';
import { FileOutput } from '../parquet/file-output.js';
import { publishParquet } from '../parquet/publish-parquet.js';
import type { ConversationalRow } from '../output/to-conversational.js';
import { copyFileBytes, rowGroupSpan, shiftRowGroup } from './copy-row-group.js';
import { FileByteWriter } from './file-byte-writer.js';
import { OUTPUT_PARQUET_SCHEMA } from './output-parquet-schema.js';

export interface ShardFileOptions {
  /** Rows per row group. */
  rowGroupSize: number;
  /**
   * Rows of the shard that come before this file's first row, when the file holds a stretch of a shard that starts
   * elsewhere (a part of a multi-machine run): its row groups are cut where the whole shard's would be, so that
   * `finalize` can copy them as they are. Default 0.
   */
  gridOffset?: number;
  /** Key/value pairs for the footer, in order (`ARROW:schema` first, as pyarrow writes it). */
  metadata: Map<string, string>;
}

/** `created_by` in every footer: fixed, so output bytes depend on nothing but the data. */
const CREATED_BY = 'rlaif-v-convert (hyparquet-writer 0.17.0)';

/**
 * A shard being written, as it stands on disk: its first `length` bytes (CRC-32 `crc`) hold `rows` rows in the row
 * groups described by `rowGroups` (their footer metadata, JSON with bigints as `{"$bigint": "…"}`).
 */
export interface SinkState {
  length: number;
  crc: number;
  rows: number;
  rowGroups: string;
}

function parseRowGroups(json: string): RowGroup[] {
  return JSON.parse(json, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && '$bigint' in value ? BigInt((value as { $bigint: string }).$bigint) : value,
  ) as RowGroup[];
}

/**
 * A parquet file written incrementally with hyparquet-writer, a row group at a time, so memory is bounded by one row
 * group. The file appears at its final path only after `close()` has checked its footer.
 *
 * The image column is stored uncompressed and plain (JPEG and PNG data does not compress; snappy over it only cost
 * time), the text columns snappy-compressed; no statistics (nothing reads them, and min/max of image bytes is waste).
 * Output bytes depend only on the rows, never on how they were split into `write()` calls.
 */
export class ShardFile {
  readonly path: string;
  readonly #tmpPath: string;
  readonly #output: FileOutput;
  readonly #bytes: FileByteWriter;
  readonly #writer: ParquetWriter;
  readonly #rowGroupSize: number;
  readonly #gridOffset: number;
  #pending: ConversationalRow[] = [];
  #rows = 0;
  #failure: unknown = null;

  private constructor(path: string, output: FileOutput, options: ShardFileOptions, resumed?: SinkState) {
    this.path = path;
    this.#tmpPath = `${path}.partial`;
    this.#output = output;
    this.#rowGroupSize = options.rowGroupSize;
    this.#gridOffset = options.gridOffset ?? 0;
    this.#bytes = new FileByteWriter(output);
    this.#writer = new ParquetWriter({
      writer: this.#bytes,
      schema: OUTPUT_PARQUET_SCHEMA,
      codec: 'SNAPPY',
      statistics: false,
      createdBy: CREATED_BY,
      kvMetadata: [...options.metadata].map(([key, value]) => ({ key, value })),
    });
    if (resumed !== undefined) {
      // The writer has put its leading PAR1 in the buffer: the file already has it, and everything up to `length`.
      this.#bytes.index = 0;
      this.#bytes.offset = resumed.length;
      this.#bytes.crc = resumed.crc;
      this.#writer.row_groups = parseRowGroups(resumed.rowGroups);
      this.#writer.num_rows = BigInt(resumed.rows);
      this.#rows = resumed.rows;
    }
  }

  /** Opens `<path>.partial` for writing; `close()` renames it to `path`. */
  static async open(path: string, options: ShardFileOptions): Promise<ShardFile> {
    return new ShardFile(path, FileOutput.open(`${path}.partial`, 'w'), options);
  }

  /**
   * Opens `<path>.partial` again where {@link state} left it (the file cut back to `state.length`), to go on writing
   * after a crash: the rows written after that state must be written again. The caller has checked the file's CRC.
   */
  static async resume(path: string, options: ShardFileOptions, state: SinkState): Promise<ShardFile> {
    return new ShardFile(path, FileOutput.open(`${path}.partial`, 'r+', state.length), options, state);
  }

  /** `<path>.partial`, the file being written. */
  get tmpPath(): string {
    return this.#tmpPath;
  }

  /** Rows given but not yet in the file: they wait for their row group to fill. */
  get pendingRows(): readonly ConversationalRow[] {
    return this.#pending;
  }

  /**
   * What is in the file so far, every byte of it written out: enough to {@link resume} from after a crash. The rows
   * still pending are not in it.
   */
  state(): SinkState {
    this.#throwIfFailed();
    this.#bytes.flush();
    this.#output.sync();
    return {
      length: this.#bytes.offset,
      crc: this.#bytes.crc,
      rows: this.#rows - this.#pending.length,
      rowGroups: JSON.stringify(this.#writer.row_groups, (_key, value: unknown) => (typeof value === 'bigint' ? { $bigint: value.toString() } : value)),
    };
  }

  /** Rows written so far. */
  get rows(): number {
    return this.#rows;
  }

  /** Appends rows; full row groups are written at once. */
  async write(rows: ConversationalRow[]): Promise<void> {
    this.#throwIfFailed();
    for (const row of rows) this.#pending.push(row);
    this.#rows += rows.length;
    try {
      for (let size = this.#nextGroupRows(); this.#pending.length >= size; size = this.#nextGroupRows()) this.#writeGroup(size);
    } catch (error) {
      this.#failure = error;
      this.#throwIfFailed();
    }
  }

  /** Rows of the next row group: up to the next multiple of the row group size, counted from the shard's start. */
  #nextGroupRows(): number {
    const inFile = this.#rows - this.#pending.length;
    return this.#rowGroupSize - ((this.#gridOffset + inFile) % this.#rowGroupSize);
  }

  /**
   * Appends a row group of another parquet file of this schema as it is, byte for byte: its column chunks are copied
   * and its footer entry moved to where they land. The same rows written by {@link write} would give the same bytes,
   * as a row group's bytes depend on its rows alone (offsets live only in the footer). No rows may be pending.
   *
   * @throws {OutputError} when rows are pending, or writing failed.
   */
  async copyRowGroup(source: FileHandle, group: RowGroup): Promise<void> {
    this.#throwIfFailed();
    if (this.#pending.length > 0) throw new OutputError('ERR_PARQUET_WRITE', `${this.path}: a row group can only be copied between row groups`);
    const { start, length } = rowGroupSpan(group);
    this.#bytes.flush();
    const shift = BigInt(this.#bytes.offset) - start;
    try {
      copyFileBytes(source, start, length, this.#bytes);
    } catch (error) {
      this.#failure = error;
      this.#throwIfFailed();
    }
    const moved = shiftRowGroup(group, shift);
    this.#writer.row_groups.push(moved);
    this.#writer.num_rows += moved.num_rows;
    this.#rows += Number(moved.num_rows);
  }

  #writeGroup(count: number): void {
    const group = this.#pending.splice(0, count);
    this.#writer.write({
      columnData: [
        // No page indexes: nothing reads them, and a resumed file would have to carry them over from the dead run.
        { name: 'chosen', data: group.map((row) => row.chosen), offsetIndex: false },
        { name: 'rejected', data: group.map((row) => row.rejected), offsetIndex: false },
        { name: 'prompt', data: group.map((row) => row.prompt), offsetIndex: false },
        { name: 'images', data: group.map((row) => row.images), codec: 'UNCOMPRESSED', encoding: 'PLAIN', offsetIndex: false },
      ],
      rowGroupSize: count,
      pageSize: 2 ** 20,
    });
  }

  /**
   * Finishes the file, checks its footer holds every row written, and moves it to its final path.
   *
   * @throws {OutputError} when writing failed or the footer disagrees with the rows written.
   */
  async close(): Promise<{ rows: number; crc: number }> {
    try {
      if (this.#pending.length > 0) this.#writeGroup(this.#pending.length);
      this.#writer.finish();
      this.#output.finish(this.#bytes.offset);
    } catch (error) {
      this.#failure = error;
    } finally {
      this.#output.close();
    }
    this.#throwIfFailed();
    return { ...(await publishParquet(this.#tmpPath, this.path, this.#rows)), crc: this.#bytes.crc };
  }

  /** Stops writing and removes the partial file. */
  async abort(): Promise<void> {
    try {
      this.#output.close();
    } catch {
      // already closed by close()
    }
    await rm(this.#tmpPath, { force: true });
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) {
      throw new OutputError('ERR_PARQUET_WRITE', `Could not write ${this.path}: ${String(this.#failure)}`, { cause: this.#failure });
    }
  }
}
