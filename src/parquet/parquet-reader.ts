import { Worker } from 'node:worker_threads';
import { workerUrl } from '../util/paths.js';
import type { ReaderReply, ReaderRequest } from './protocol.js';

/**
 * Reads row groups of the input with parquet-wasm in a thread of its own (workers/read-parquet), batch by batch as
 * Arrow IPC streams. On damaged data parquet-wasm can trap where no caller can catch it (see the thread's module): the
 * thread then dies, every read under way fails with what it said, and the next read starts a new thread.
 */

/** What a stream yields: a batch's rows as an Arrow IPC stream. */
export interface IpcBatch {
  rows: number;
  ipc: Uint8Array;
}

const READER_URL = workerUrl('read-parquet');

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

let thread: { worker: Worker; waiting: Map<number, (reply: ReaderReply | Error) => void> } | null = null;
let nextId = 1;
let nextStream = 1;

/** The reader thread, started when there is none (or the last one died). Held only while a read waits on it. */
function readerThread(): NonNullable<typeof thread> {
  if (thread !== null) return thread;
  const worker = new Worker(READER_URL);
  const waiting = new Map<number, (reply: ReaderReply | Error) => void>();
  const current = { worker, waiting };
  const failAll = (error: Error): void => {
    if (thread === current) thread = null;
    for (const settle of waiting.values()) settle(error);
    waiting.clear();
  };
  worker.on('message', (reply: ReaderReply) => {
    const settle = waiting.get(reply.id);
    waiting.delete(reply.id);
    if (waiting.size === 0) worker.unref();
    settle?.(reply);
  });
  worker.on('error', (error) => failAll(error));
  worker.on('exit', (code) => failAll(new Error(`the parquet reader thread stopped (exit code ${code})`)));
  worker.unref();
  thread = current;
  return current;
}

function ask(message: DistributiveOmit<ReaderRequest, 'id'>): Promise<ReaderReply> {
  const { worker, waiting } = readerThread();
  const request = { ...message, id: nextId++ } as ReaderRequest;
  return new Promise((resolve, reject) => {
    waiting.set(request.id, (reply) => {
      if (reply instanceof Error) reject(reply);
      else if (reply.type === 'failed') reject(new Error(reply.message));
      else resolve(reply);
    });
    worker.ref();
    worker.postMessage(request);
  });
}

/**
 * The batches of `limit` rows of row group `rowGroup` of the file at `path` from row `offset` within it, of the
 * columns named, `batchSize` rows at most a batch. The next batch is read while this one is used.
 *
 * @throws {Error} what parquet-wasm said, or that its thread died, when the data cannot be read.
 */
export async function* readRowGroupBatches(
  path: string,
  options: { rowGroup: number; batchSize: number; columns: string[]; offset: number; limit: number },
): AsyncGenerator<IpcBatch> {
  const stream = nextStream++;
  await ask({ type: 'open', stream, path, ...options });
  let ended = false;
  try {
    let next = ask({ type: 'next', stream });
    for (;;) {
      const reply = await next;
      if (reply.type !== 'batch') {
        ended = true;
        return;
      }
      next = ask({ type: 'next', stream });
      // Read ahead; a failure is taken up when it is awaited (or dropped with the stream, when it is not).
      next.catch(() => undefined);
      yield { rows: reply.rows, ipc: reply.ipc };
    }
  } finally {
    if (!ended) await ask({ type: 'close', stream }).catch(() => undefined);
  }
}

let holders = 0;

/**
 * Starts the reader thread and marks it as in use by a run until the returned function is called; the last run to let go stops it,
 * so that the memory parquet-wasm grew to is given back (an idle thread does not keep the process alive either way).
 */
export function holdParquetReader(): () => Promise<void> {
  holders++;
  // Started now, it loads parquet-wasm while the run plans.
  readerThread();
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    if (--holders > 0) return;
    const current = thread;
    thread = null;
    await current?.worker.terminate();
  };
}
