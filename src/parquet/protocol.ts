/** The messages of the parquet reader thread (src/parquet/parquet-reader.ts, workers/read-parquet.ts). */

/** Messages to the reader thread: open a stream of a row group's batches, take its next batch, close it. */
export type ReaderRequest =
  | { type: 'open'; id: number; stream: number; path: string; rowGroup: number; batchSize: number; columns: string[]; offset: number; limit: number }
  | { type: 'next'; id: number; stream: number }
  | { type: 'close'; id: number; stream: number };

/** Answers, each to the request of its `id`. */
export type ReaderReply =
  | { type: 'opened'; id: number }
  | { type: 'batch'; id: number; rows: number; ipc: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'closed'; id: number }
  | { type: 'failed'; id: number; message: string };
