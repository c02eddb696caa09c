/**
 * The parquet reader thread's work: parquet-wasm reads the input's row groups there, not on the main thread, because
 * damaged data can make it trap (a Rust panic, `RuntimeError: unreachable`) inside a task it runs from the microtask
 * queue, where no caller can catch it: in the main thread that ended the process. There it ends that thread only,
 * which the main thread reports as the file's data error (see parquet-reader.ts, the main thread's end, and
 * protocol.ts, the messages).
 */
import { openAsBlob } from 'node:fs';
import type { MessagePort } from 'node:worker_threads';
import { ParquetFile, type RecordBatch } from 'parquet-wasm';
import type { ReaderReply, ReaderRequest } from './protocol.js';

/** Files open, by path, with how many of their streams are open; the last one opened is kept for its next row group. */
const files = new Map<string, { file: ParquetFile; streams: number }>();
let last: string | null = null;
const streams = new Map<number, { path: string; reader: ReadableStreamDefaultReader<RecordBatch> }>();

async function fileOf(path: string): Promise<ParquetFile> {
  let entry = files.get(path);
  if (entry === undefined) {
    entry = { file: await ParquetFile.fromFile(await openAsBlob(path)), streams: 0 };
    files.set(path, entry);
  }
  last = path;
  for (const [other, { file, streams: open }] of files) {
    if (other !== last && open === 0) {
      file.free();
      files.delete(other);
    }
  }
  return entry.file;
}

function closed(stream: number): void {
  const entry = streams.get(stream);
  streams.delete(stream);
  const file = entry === undefined ? undefined : files.get(entry.path);
  if (file !== undefined) file.streams--;
}

async function handle(request: ReaderRequest): Promise<ReaderReply> {
  if (request.type === 'open') {
    const { id, stream, path, rowGroup, batchSize, columns, offset, limit } = request;
    const batches = await (await fileOf(path)).stream({ rowGroups: [rowGroup], batchSize, columns, offset, limit });
    streams.set(stream, { path, reader: batches.getReader() });
    const file = files.get(path);
    if (file !== undefined) file.streams++;
    return { type: 'opened', id };
  }
  const reader = streams.get(request.stream)?.reader;
  if (request.type === 'close') {
    closed(request.stream);
    await reader?.cancel().catch(() => undefined);
    return { type: 'closed', id: request.id };
  }
  if (reader === undefined) return { type: 'end', id: request.id };
  const next = await reader.read();
  if (next.done) {
    closed(request.stream);
    return { type: 'end', id: request.id };
  }
  const rows = next.value.numRows;
  // intoIPCStream consumes the wasm batch: its memory is released by the call.
  return { type: 'batch', id: request.id, rows, ipc: next.value.intoIPCStream() };
}

/**
 * Serves the reader thread's requests from `port`, one at a time, in order: parquet-wasm's objects are not to be used
 * by two tasks at once.
 */
export function serveReader(port: MessagePort): void {
  let queue = Promise.resolve();
  port.on('message', (request: ReaderRequest) => {
    queue = queue.then(async () => {
      try {
        const reply = await handle(request);
        port.postMessage(reply, reply.type === 'batch' ? [reply.ipc.buffer as ArrayBuffer] : []);
      } catch (error) {
        port.postMessage({ type: 'failed', id: request.id, message: error instanceof Error ? error.message : String(error) } satisfies ReaderReply);
      }
    });
  });
}
