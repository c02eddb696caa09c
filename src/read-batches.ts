import { openAsBlob } from 'node:fs';
import { ParquetFile, type RecordBatch as WasmRecordBatch } from 'parquet-wasm';
import { InputError } from './errors.js';
import type { InputPlan } from './inspect-input.js';
import { SOURCE_COLUMNS } from './output-schema.js';

export interface SourceBatch {
  /** Global index of the first row. */
  firstRow: number;
  rows: number;
  /** The source columns as an Arrow IPC stream, in a buffer of its own (safe to transfer). */
  ipc: Uint8Array;
  file: string;
}

/**
 * Reads the planned files in order, one row group at a time (parquet-wasm loads a row group whole, so each is read
 * exactly once), and yields batches of at most `batchSize` rows of the source columns, never crossing a row group.
 *
 * @throws {InputError} when a file's data cannot be read although its footer could.
 */
export async function* readBatches(plan: InputPlan, batchSize: number): AsyncGenerator<SourceBatch> {
  for (const file of plan.files) {
    const parquet = await ParquetFile.fromFile(await openAsBlob(file.path));
    try {
      let firstRow = file.firstRow;
      for (const group of file.rowGroups) {
        let stream: ReadableStream<WasmRecordBatch>;
        try {
          stream = await parquet.stream({ rowGroups: [group.index], batchSize, columns: [...SOURCE_COLUMNS] });
        } catch (error) {
          throw new InputError('ERR_PARQUET_DATA', `${file.path}: row group ${group.index} cannot be read (${String(error)}).`, {
            cause: error,
            file: file.path,
          });
        }
        const reader = stream.getReader();
        let read = 0;
        for (;;) {
          let next;
          try {
            next = await reader.read();
          } catch (error) {
            throw new InputError('ERR_PARQUET_DATA', `${file.path}: row group ${group.index} cannot be read (${String(error)}).`, {
              cause: error,
              file: file.path,
            });
          }
          if (next.done) break;
          const rows = next.value.numRows;
          // intoIPCStream consumes the wasm batch: its memory is released by the call.
          const ipc = next.value.intoIPCStream();
          yield { firstRow, rows, ipc, file: file.path };
          firstRow += rows;
          read += rows;
        }
        if (read !== group.rows) {
          throw new InputError(
            'ERR_PARQUET_DATA',
            `${file.path}: row group ${group.index} yielded ${read} rows but its footer says ${group.rows}.`,
            { file: file.path },
          );
        }
      }
    } finally {
      parquet.free();
    }
  }
}
