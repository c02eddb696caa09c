import { open } from 'node:fs/promises';
import { InputError } from '../errors.js';
import type { InputFile, InputRowGroup } from '../plan/inspect-input.js';
import { columnsOf } from '../source/source-layout.js';
import { readColumnPages, readFooter } from '../parquet/read-column-pages.js';
import { readRowGroupBatches, type IpcBatch } from '../parquet/parquet-reader.js';
import { readSourceRows } from './source-rows-from-arrow.js';
import type { GroupBatch, Stretch } from './source-batch.js';

/** The input's data error for row group `group` of `file` (or its `column`) that does not read. Exit 2. */
export function dataError(file: string, group: number, error: unknown, column?: string): InputError {
  // parquet-wasm says no more than that it stopped (a Rust panic is a trap in WebAssembly).
  const reason = /\bunreachable\b/.test(String(error)) ? 'its data does not decode: parquet-wasm stopped on it' : String(error);
  return new InputError('ERR_PARQUET_DATA', `${file}: ${column === undefined ? '' : `${column} of `}row group ${group} cannot be read (${reason}).`, { cause: error, file });
}

/**
 * Which of `columns` (top-level names) in row group `group` of `file` does not decode, page by page with hyparquet:
 * parquet-wasm, reading them together, does not say. Null when each does (or the file cannot be opened).
 */
async function failingColumn(file: string, group: number, columns: readonly string[]): Promise<string | null> {
  const handle = await open(file, 'r').catch(() => null);
  if (handle === null) return null;
  try {
    const footer = await readFooter(handle, (await handle.stat()).size);
    const leaves = (footer.row_groups[group]?.columns ?? []).flatMap((chunk) => (chunk.meta_data === undefined ? [] : [chunk.meta_data.path_in_schema]));
    for (const leaf of leaves.filter((leaf) => columns.includes(leaf[0] ?? ''))) {
      try {
        for await (const _page of readColumnPages(handle, footer, group, leaf)) {
          // decoded, and let go
        }
      } catch {
        return leaf.join('.');
      }
    }
    return null;
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}

/** Batches of a row group read by parquet-wasm (in its thread), whole or without the image column. */
export async function* wasmBatches(file: string, group: InputRowGroup, batchSize: number, columns: string[], stretch: Stretch): AsyncGenerator<IpcBatch> {
  const batches = readRowGroupBatches(file, { rowGroup: group.index, batchSize, columns, offset: stretch.offset, limit: stretch.rows });
  for (;;) {
    let next;
    try {
      next = await batches.next();
    } catch (error) {
      const column = await failingColumn(file, group.index, columns);
      throw dataError(file, group.index, error, column === null ? `one of the columns ${columns.join(', ')}` : `the column ${column}`);
    }
    if (next.done === true) return;
    yield next.value;
  }
}

/** Reads each stretch of a row group by itself with parquet-wasm, in batches of at most `batchSize` rows that hold their image bytes. */
export async function* wasmGroupBatches(input: InputFile, group: InputRowGroup, batchSize: number, stretches: readonly Stretch[]): AsyncGenerator<GroupBatch> {
  for (const stretch of stretches) {
    let offset = stretch.offset;
    for await (const batch of wasmBatches(input.path, group, batchSize, columnsOf(input.layout), stretch)) {
      const rows = batch.rows;
      yield { rows, data: readSourceRows(batch.ipc, undefined, input.layout), offset };
      offset += rows;
    }
  }
}
