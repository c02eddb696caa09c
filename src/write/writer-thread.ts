import { Worker } from 'node:worker_threads';
import { OutputError } from '../errors.js';
import { workerUrl } from '../util/paths.js';
import { imageBufferBytes } from '../output/to-conversational.js';
import type { SplitPart } from './encode-split.js';
import type { WriterReply, WriterRequest, WriterSetup, WritersState } from './protocol.js';
import type { SplitWriterOptions, SplitWriterState, WrittenSplit } from './split-writer.js';

const WRITER_URL = workerUrl('write-splits');

/** Parts posted but not yet written: enough to keep the thread busy, few enough to bound memory. */
const MAX_PENDING = 4;

/** The buffers of the parts' images, each once (a page's buffer holds several images, of either split). */
function buffersOf(parts: SplitPart[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const part of parts) for (const row of part.data) for (const image of row.images) buffers.add(image.bytes.buffer as ArrayBuffer);
  return [...buffers];
}

/**
 * The splits' writers (see {@link SplitWriter}), run in a thread of their own. Parts are posted with their image
 * buffers transferred, so the main thread never copies nor encodes image bytes; `append` waits only when the thread
 * is `MAX_PENDING` parts behind.
 */
export class WriterThread {
  readonly #worker: Worker;
  readonly #rows = new Map<string, number>();
  readonly #replies: WriterReply[] = [];
  /** The image bytes of each part posted and not yet written, oldest first. */
  readonly #queued: number[] = [];
  #queuedBytes = 0;
  #heldBytes = 0;
  #failure: OutputError | null = null;
  #wake: (() => void) | null = null;
  #thread: { id: number; cpu: number } | null = null;

  constructor(splits: Record<string, SplitWriterOptions>, resume?: Record<string, SplitWriterState>, url: URL = WRITER_URL) {
    if (resume !== undefined) for (const [split, state] of Object.entries(resume)) this.#rows.set(split, state.rows);
    this.#worker = new Worker(url, { workerData: { splits, resume } satisfies WriterSetup });
    this.#worker.on('message', (reply: WriterReply) => {
      if (reply.type === 'failed') this.#fail(new OutputError(reply.code, reply.message));
      else if (reply.type === 'appended') {
        this.#queuedBytes -= this.#queued.shift() ?? 0;
        this.#heldBytes = reply.held;
      }
      else this.#replies.push(reply);
      this.#wake?.();
    });
    this.#worker.on('error', (error) => this.#fail(new OutputError('ERR_PARQUET_WRITE', `The writer thread failed: ${error.message}`, { cause: error })));
    this.#worker.on('exit', (code) => {
      if (code !== 0) this.#fail(new OutputError('ERR_PARQUET_WRITE', `The writer thread stopped (exit code ${code}).`));
      this.#wake?.();
    });
  }

  /** The writer thread's kernel id and CPU seconds as of the last split finished; null before, or without /proc. */
  get thread(): { id: number; cpu: number } | null {
    return this.#thread;
  }

  /**
   * Image bytes the writer thread has: in parts posted and not yet written, and in rows waiting for their row group
   * (as of its last answer).
   */
  get bytes(): number {
    return this.#queuedBytes + this.#heldBytes;
  }

  /** Parts posted and not yet written. */
  get queued(): number {
    return this.#queued.length;
  }

  /** Waits until every part posted is written. */
  async flush(): Promise<void> {
    while (this.#queued.length > 0) await this.#next();
  }

  /** Rows appended to a split so far. */
  rows(split: string): number {
    return this.#rows.get(split) ?? 0;
  }

  /**
   * Appends one batch's rows, a part per split, in one message: the parts may share image buffers, which are
   * transferred, so the parts are unusable here afterwards.
   */
  async append(parts: Record<string, SplitPart>): Promise<void> {
    this.#throwIfFailed();
    for (const [split, part] of Object.entries(parts)) this.#rows.set(split, this.rows(split) + part.rows);
    const bytes = imageBufferBytes(Object.values(parts).flatMap((part) => part.data));
    this.#worker.postMessage({ type: 'append', parts } satisfies WriterRequest, buffersOf(Object.values(parts)));
    this.#queued.push(bytes);
    this.#queuedBytes += bytes;
    while (this.#queued.length >= MAX_PENDING) await this.#next();
  }

  /** Where every split stands on disk once all parts appended so far are written (see {@link SplitWriter.state}). */
  async checkpoint(): Promise<WritersState> {
    this.#throwIfFailed();
    this.#worker.postMessage({ type: 'checkpoint' } satisfies WriterRequest);
    for (;;) {
      const at = this.#replies.findIndex((reply) => reply.type === 'checkpoint');
      if (at >= 0) {
        const reply = this.#replies.splice(at, 1)[0];
        if (reply?.type === 'checkpoint') return reply.splits;
      }
      await this.#next();
    }
  }

  /**
   * Closes a split's shards (cutting them again, apart, if their plan did not hold), yielding rows rewritten as it goes
   * (see {@link SplitWriter.cut}; the caller settles the split).
   */
  async *cut(split: string): AsyncGenerator<number, WrittenSplit> {
    this.#worker.postMessage({ type: 'cut', split } satisfies WriterRequest);
    for (;;) {
      const reply = this.#replies.shift();
      if (reply === undefined) {
        await this.#next();
        continue;
      }
      if (reply.type === 'rewritten') yield reply.rows;
      else if (reply.type === 'finished') {
        this.#thread = reply.thread;
        return reply.result;
      }
    }
  }

  /** Removes what was written and stops the thread. */
  async abort(): Promise<void> {
    if (this.#failure === null) {
      this.#worker.postMessage({ type: 'abort' } satisfies WriterRequest);
      while (this.#failure === null && !this.#replies.some((reply) => reply.type === 'aborted')) await this.#next().catch(() => undefined);
    }
    await this.#worker.terminate();
  }

  /** Stops the thread once every split is finished. */
  async close(): Promise<void> {
    await this.#worker.terminate();
  }

  async #next(): Promise<void> {
    this.#throwIfFailed();
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    this.#wake = null;
    this.#throwIfFailed();
  }

  #fail(error: OutputError): void {
    this.#failure ??= error;
    this.#wake?.();
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure;
  }
}
