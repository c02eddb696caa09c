import path from 'node:path';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { readParquet } from 'parquet-wasm';
import { Field, Int64, Schema, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { sourceSchema } from '../source/source-schema.js';
import { sourceColumns } from '../source/source-rows-to-arrow.js';
import { ParquetSink } from '../parquet/parquet-sink.js';
import type { RejectedRow } from '../source/source-row.js';
import { ROW_GROUP_SIZE } from '../output/splits.js';

const source = sourceSchema();


/** The rejects file: the row index, why it was rejected, then the original row with every source column. */
const rejectSchema = new Schema(
  [
    new Field('row_index', new Int64(), true),
    new Field('error_code', new Utf8(), true),
    new Field('error_message', new Utf8(), true),
    ...source.fields,
  ],
  new Map([
    [
      'huggingface',
      JSON.stringify({
        info: {
          features: {
            row_index: { dtype: 'int64', _type: 'Value' },
            error_code: { dtype: 'string', _type: 'Value' },
            error_message: { dtype: 'string', _type: 'Value' },
            ...(JSON.parse(source.metadata.get('huggingface') ?? '{}') as { info: { features: object } }).info.features,
          },
        },
      }),
    ],
  ]),
);

const sinkOptions = { rowGroupSize: ROW_GROUP_SIZE, metadata: new Map([['huggingface', rejectSchema.metadata.get('huggingface') ?? '']]) };

/** One file of rejected rows, closed at a checkpoint: what a resumed run keeps of the dead run's rejects. */
export interface RejectSegment {
  /** Relative to the dataset directory: `rejects/segment-00002.parquet`. */
  file: string;
  rows: number;
  size: number;
  crc: number;
  /** Row indices of its rows. */
  indices: number[];
}

const FILE = 'rejects/rejects.parquet';

/**
 * Quarantine for rows that could not be converted: `rejects/rejects.parquet`, holding each original row unchanged
 * with a stable error code and a message. Rows go to segment files, one per stretch between checkpoints (see
 * {@link cut}), so a run taken up after a crash keeps those already written; `finish` joins them into the one file.
 */
export class RejectsFile {
  readonly #dir: string;
  readonly #segments: RejectSegment[];
  readonly #counts = new Map<string, number>();
  #sink: ParquetSink | null = null;
  #indices: number[] = [];
  #finished = false;

  constructor(dir: string, resumed: { segments: RejectSegment[]; counts: Record<string, number> } = { segments: [], counts: {} }) {
    this.#dir = dir;
    this.#segments = [...resumed.segments];
    for (const [code, count] of Object.entries(resumed.counts)) this.#counts.set(code, count);
  }

  /** Rejected rows by code. */
  get counts(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a], [b]) => a.localeCompare(b)));
  }

  get rows(): number {
    let total = 0;
    for (const count of this.#counts.values()) total += count;
    return total;
  }

  /** Relative path of the rejects file, or null when nothing was rejected. */
  get file(): string | null {
    return this.rows === 0 ? null : FILE;
  }

  async write(rows: RejectedRow[]): Promise<void> {
    if (rows.length === 0) return;
    for (const row of rows) this.#counts.set(row.code, (this.#counts.get(row.code) ?? 0) + 1);
    if (this.#sink === null) {
      await mkdir(path.join(this.#dir, 'rejects'), { recursive: true });
      const name = `rejects/segment-${String(this.#segments.length).padStart(5, '0')}.parquet`;
      this.#sink = await ParquetSink.open(path.join(this.#dir, name), sinkOptions);
    }
    for (const row of rows) this.#indices.push(row.index);
    const columns: Record<string, Vector> = {
      row_index: vectorFromArray(rows.map((row) => BigInt(row.index)), new Int64()),
      error_code: vectorFromArray(rows.map((row) => row.code), new Utf8()),
      error_message: vectorFromArray(rows.map((row) => row.message), new Utf8()),
    };
    Object.assign(columns, sourceColumns(rows.map((row) => row.row)));
    await this.#sink.write(tableToIPC(new Table(rejectSchema, columns), 'stream'));
  }

  /** Closes the segment being written, if any; returns every segment closed so far, in order. */
  async cut(): Promise<RejectSegment[]> {
    const sink = this.#sink;
    if (sink !== null) {
      this.#sink = null;
      const { rows } = await sink.close();
      const bytes = await readFile(sink.path);
      this.#segments.push({ file: path.relative(this.#dir, sink.path).split(path.sep).join('/'), rows, size: bytes.byteLength, crc: crc32(bytes), indices: this.#indices });
      this.#indices = [];
    }
    return [...this.#segments];
  }

  /**
   * Joins the segments into `rejects/rejects.parquet` (the same bytes however many there were). They stay, as the last
   * checkpoint holds them, until {@link removeSegments}.
   */
  async finish(): Promise<void> {
    const segments = await this.cut();
    this.#finished = true;
    await joinRejectSegments(
      segments.map((segment) => path.join(this.#dir, segment.file)),
      path.join(this.#dir, FILE),
    );
  }

  /** Removes the segments joined by {@link finish}. */
  async removeSegments(): Promise<void> {
    for (const segment of this.#segments) await rm(path.join(this.#dir, segment.file), { force: true });
  }

  async abort(): Promise<void> {
    if (!this.#finished) await this.#sink?.abort();
  }
}

/**
 * Joins segment files of rejected rows, in order, into one rejects file at `target` (nothing when there are none): the
 * same bytes however the rows were spread over segments, or over the parts of a multi-machine run.
 */
export async function joinRejectSegments(files: readonly string[], target: string): Promise<void> {
  if (files.length === 0) return;
  await mkdir(path.dirname(target), { recursive: true });
  const joined = await ParquetSink.open(target, sinkOptions);
  try {
    for (const file of files) {
      const table = readParquet(await readFile(file));
      await joined.write(table.intoIPCStream());
    }
    await joined.close();
  } catch (error) {
    await joined.abort();
    throw error;
  }
}

/** Where the rejects file of a dataset directory is. */
export const REJECTS_FILE = FILE;
