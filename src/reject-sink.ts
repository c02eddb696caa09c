import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { Field, Int64, Schema, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { sourceSchema } from './output-schema.js';
import { sourceColumns } from './source-table.js';
import { ParquetSink } from './parquet-sink.js';
import type { RejectCode, RejectedRow } from './types.js';

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

/**
 * Quarantine for rows that could not be converted: `rejects/rejects.parquet`, opened on the first reject, holding
 * each original row unchanged with a stable error code and a message.
 */
export class RejectSink {
  readonly #dir: string;
  #sink: ParquetSink | null = null;
  readonly #counts = new Map<RejectCode, number>();

  constructor(dir: string) {
    this.#dir = dir;
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
    return this.#sink === null ? null : 'rejects/rejects.parquet';
  }

  async write(rows: RejectedRow[]): Promise<void> {
    if (rows.length === 0) return;
    for (const row of rows) this.#counts.set(row.code, (this.#counts.get(row.code) ?? 0) + 1);
    if (this.#sink === null) {
      await mkdir(path.join(this.#dir, 'rejects'), { recursive: true });
      this.#sink = await ParquetSink.open(path.join(this.#dir, 'rejects', 'rejects.parquet'), {
        rowGroupSize: 100,
        metadata: new Map([['huggingface', rejectSchema.metadata.get('huggingface') ?? '']]),
      });
    }
    const columns: Record<string, Vector> = {
      row_index: vectorFromArray(rows.map((row) => BigInt(row.index)), new Int64()),
      error_code: vectorFromArray(rows.map((row) => row.code), new Utf8()),
      error_message: vectorFromArray(rows.map((row) => row.message), new Utf8()),
    };
    Object.assign(columns, sourceColumns(rows.map((row) => row.row)));
    await this.#sink.write(tableToIPC(new Table(rejectSchema, columns), 'stream'));
  }

  async close(): Promise<void> {
    await this.#sink?.close();
  }

  async abort(): Promise<void> {
    await this.#sink?.abort();
  }
}
