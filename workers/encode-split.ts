import { Table, tableToIPC, vectorFromArray } from 'apache-arrow';
import { imagesType, messagesType, outputSchema } from '../src/output-schema.js';
import { rowNbytes, type ConversationalRow } from '../src/to-conversational.js';
import type { SplitPart } from '../src/types.js';

/** Conversational rows in the output schema as one Arrow IPC stream, with their size as `datasets` counts it. */
export function encodeSplit(rows: readonly ConversationalRow[]): SplitPart | null {
  if (rows.length === 0) return null;
  // Table(schema, columns) pairs columns with fields by position: the columns are listed in schema order.
  const table = new Table(outputSchema, {
    chosen: vectorFromArray(rows.map((row) => row.chosen), messagesType),
    rejected: vectorFromArray(rows.map((row) => row.rejected), messagesType),
    prompt: vectorFromArray(rows.map((row) => row.prompt), messagesType),
    images: vectorFromArray(rows.map((row) => row.images), imagesType),
  });
  let nbytes = 0;
  for (const row of rows) nbytes += rowNbytes(row);
  return { ipc: tableToIPC(table, 'stream'), rows: rows.length, nbytes };
}
