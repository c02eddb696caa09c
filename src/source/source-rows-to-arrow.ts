import { Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { SOURCE_COLUMNS, sourceImageType, sourceSchema } from './source-schema.js';
import { ParquetSink } from '../parquet/parquet-sink.js';
import type { SourceRow } from './source-row.js';

/**
 * The source columns of `rows` as Arrow vectors, in schema order (`new Table(schema, columns)` pairs columns with
 * fields by position, not by name).
 */
export function sourceColumns(rows: readonly SourceRow[]): Record<string, Vector> {
  const columns: Record<string, Vector> = {};
  for (const name of SOURCE_COLUMNS) {
    columns[name] =
      name === 'image'
        ? vectorFromArray(rows.map((row) => row.image), sourceImageType)
        : vectorFromArray(rows.map((row) => row[name]), new Utf8());
  }
  return columns;
}

/** `rows` in the source schema, with its `huggingface` metadata, as an Arrow IPC stream. */
export function sourceRowsToIPC(rows: readonly SourceRow[]): Uint8Array {
  return tableToIPC(new Table(sourceSchema(), sourceColumns(rows)), 'stream');
}

/**
 * Opens a parquet file for rows in the exact schema of openbmb/RLAIF-V-Dataset, its pages of about `pageBytes` (see
 * ParquetSinkOptions).
 */
export async function openSourceSink(path: string, rowGroupSize: number, pageBytes?: number): Promise<ParquetSink> {
  return ParquetSink.open(path, {
    rowGroupSize,
    ...(pageBytes === undefined ? {} : { pageBytes }),
    metadata: new Map([['huggingface', sourceSchema().metadata.get('huggingface') ?? '']]),
  });
}

/**
 * Writes `rows` as a parquet file in the source schema (the sample generator and the test fixtures use it).
 * Default: one row group for the whole file.
 */
export async function writeSourceFile(path: string, rows: readonly SourceRow[], rowGroupSize = Math.max(1, rows.length), pageBytes?: number): Promise<void> {
  const sink = await openSourceSink(path, rowGroupSize, pageBytes);
  try {
    await sink.write(sourceRowsToIPC(rows));
    await sink.close();
  } catch (error) {
    await sink.abort();
    throw error;
  }
}
