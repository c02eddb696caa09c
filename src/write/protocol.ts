import type { ErrorCode } from '../errors.js';
import type { SplitPart } from './encode-split.js';
import type { SplitWriterOptions, SplitWriterState, WrittenSplit } from './split-writer.js';

/**
 * The messages of the writer thread (src/write/writer-thread.ts, workers/write-splits.ts): parts of splits go to it
 * in order, with their image buffers transferred; it answers each message in turn.
 */

/** What the writer thread is started with: the options of each split's writer, and where to take up a dead run. */
export interface WriterSetup {
  splits: Record<string, SplitWriterOptions>;
  resume?: Record<string, SplitWriterState> | undefined;
}

/** Each split's state on disk, and how many of its last rows are not in it (see {@link SplitWriter.state}). */
export type WritersState = Record<string, { state: SplitWriterState; pending: number }>;

/** Messages to the writer thread, handled in order. */
export type WriterRequest =
  | { type: 'append'; parts: Record<string, SplitPart> }
  | { type: 'checkpoint' }
  | { type: 'cut'; split: string }
  | { type: 'abort' };

/**
 * Its answers: one `appended` a part (with `held`, the bytes of images in rows it still holds for their row group);
 * for `cut`, `rewritten` rows as it goes, then `finished`.
 */
export type WriterReply =
  | { type: 'appended'; held: number }
  | { type: 'checkpoint'; splits: WritersState }
  | { type: 'rewritten'; split: string; rows: number }
  /** `thread`: the writer thread's kernel id and CPU seconds so far (null without /proc), for the report. */
  | { type: 'finished'; split: string; result: WrittenSplit; thread: { id: number; cpu: number } | null }
  | { type: 'aborted' }
  | { type: 'failed'; code: ErrorCode; message: string };
