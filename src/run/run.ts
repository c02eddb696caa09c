import type { Piscina } from 'piscina';
import type { ResolvedConvertOptions } from '../options/convert-options.js';
import type { ConvertReport } from './convert-report.js';
import type { Planned } from './plan-conversion.js';
import type { BytesInFlight } from './bytes-in-flight.js';
import type { RejectsFile } from '../write/rejects-file.js';
import type { ConvertResult, ConvertTask } from '../work/protocol.js';
import type { ImageStoreSettings } from '../image/image-store.js';
import type { Staging } from '../dirs/staging.js';
import type { Checkpoint } from './checkpoint.js';
import type { WriterThread } from '../write/writer-thread.js';
import type { WrittenSplit } from '../write/split-writer.js';

/** The pool of conversion workers (workers/convert-batch.ts). */
export type ConvertPool = Piscina<ConvertTask, ConvertResult>;

/** A run under way: its plan and the threads and sinks it works with. */
export interface Run extends Planned {
  options: ResolvedConvertOptions;
  signal: AbortSignal | undefined;
  pool: ConvertPool;
  writers: WriterThread;
  /** Image data read and not yet written, against options.maxBytesInFlight. */
  memory: BytesInFlight;
  /** The staging directory held: its lock is checked before each checkpoint and before publishing. */
  lock: Staging;
  rejects: RejectsFile;
  tally: Tally;
  staging: string;
  fingerprint: string;
  /** The checkpoint of the interrupted run this one takes up, or null. */
  resumed: Checkpoint | null;
  /** The checkpoint last written (or the one taken up): what a split finished is added to (see finishSplits). */
  lastCheckpoint: Checkpoint | null;
  /** The splits whose writing is finished (see Checkpoint.finished): taken up so, or finished by this run. */
  finished: Record<string, WrittenSplit>;
  /** What the report says of it. */
  resumeNote: ConvertReport['resume'];
  /** The input rows this run converts: all of them, or those the checkpoint it takes up does not hold. */
  toRead: [number, number][];
  /** The input rows this run is for: all of them, or a part's. */
  range: { firstRow: number; endRow: number };
  /** The persistent cache of image work, opened for this run's image policy, or null when it is off. */
  store: ImageStoreSettings | null;
}

/** What the conversion counts as it goes, for the report. */
export class Tally {
  readonly images = { kept: 0, reencoded: 0, distinct: 0, repeated: 0, validated: 0, fromCache: 0, bytesIn: 0 };
  /** Rows with image bytes. */
  #withImage = 0;
  readonly workerSeconds = { images: 0, format: 0 };
  /** Each worker thread's CPU seconds, by kernel thread id, as its last result said. */
  readonly workerThreads = new Map<number, number>();
  readonly #distinct = new Set<string>();
  rows = 0;
  readMs = 0;
  writeMs = 0;

  add(result: ConvertResult): void {
    this.images.kept += result.stats.imagesKept;
    this.images.reencoded += result.stats.imagesReencoded;
    this.images.validated += result.stats.imagesValidated;
    this.images.fromCache += result.stats.imagesFromCache;
    for (const key of result.imageKeys) this.#distinct.add(key);
    this.#withImage += result.imageKeys.length;
    this.images.distinct = this.#distinct.size;
    this.images.repeated = this.#withImage - this.#distinct.size;
    this.images.bytesIn += result.stats.imageBytesIn;
    this.workerSeconds.images += result.stats.imageMs / 1000;
    this.workerSeconds.format += result.stats.formatMs / 1000;
    if (result.stats.thread !== null) {
      const { id, cpu } = result.stats.thread;
      this.workerThreads.set(id, Math.max(cpu, this.workerThreads.get(id) ?? 0));
    }
    this.rows += result.rows;
  }
}
