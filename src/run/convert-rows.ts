import { randomUUID } from 'node:crypto';
import type { ResolvedConvertOptions } from '../options/convert-options.js';
import { RlaifError } from '../errors.js';
import type { Piscina } from 'piscina';
import type { ConvertEvent, ConvertReport, SplitName, SplitReport } from './convert-report.js';
import type { Planned } from './plan-conversion.js';
import { readBatches, rereadBatch } from '../read/read-batches.js';
import { batchBytes, type SourceBatch } from '../read/source-batch.js';
import { BytesInFlight } from './bytes-in-flight.js';
import { MAX_BATCH_BYTES } from '../read/page-range.js';
import { runBatch, startBatch } from '../work/run-batch.js';
import { RejectSink } from '../write/reject-sink.js';
import type { ConvertResult, ConvertTask } from '../work/protocol.js';
import type { ImageStoreSettings } from '../image/image-store.js';
import type { RejectedRow } from '../source/source-row.js';
import type { SplitPart } from '../write/encode-split.js';
import type { Staging } from '../dirs/staging.js';
import { RecentRows, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { bytesBefore, planUnits } from '../plan/plan-units.js';
import { WriterThread } from '../write/writer-thread.js';
import { keptTableBuffer } from '../image/image-cache.js';
import { settleSplit, type SplitWriterState, type WrittenSplit } from '../write/split-writer.js';

/**
 * The heart of a conversion: the in-order loop that reads batches, converts them in the pool and hands their rows to
 * the writer thread, taking checkpoints; then the end of the writing, each split finished recorded in the checkpoint.
 */

/** Tasks in flight per worker: enough to keep every worker busy while the main thread reads and writes. */
const TASKS_PER_WORKER = 2;

const SPLITS: readonly SplitName[] = ['train', 'test'];

/** Reject codes about a row's text; every other code is about its image (what --on-bad-image decides on). */
const TEXT_CODES = new Set<string>(['missing_text', 'empty_text']);

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

/** The error `--on-bad-image fail` stops the run with at the first row rejected for its image; null when none was. */
function badImageError(rejects: readonly RejectedRow[]): RlaifError | null {
  const bad = rejects.find((row) => !TEXT_CODES.has(row.code));
  if (bad === undefined) return null;
  const row = `Row ${bad.index} (idx ${JSON.stringify(bad.row.idx)})`;
  const then = 'Stopped because of --on-bad-image fail; with --on-bad-image skip such rows go to rejects/ and the run goes on.';
  // A worker that died or hung on the row, on a fresh worker too: most likely its image, but not known to be.
  if (bad.code === 'worker_failed') return new RlaifError('ERR_WORKER_FAILED', `${row}: ${bad.message}, twice (the second time on a fresh worker). ${then}`);
  if (bad.code === 'image_timeout') return new RlaifError('ERR_IMAGE_TIMEOUT', `${row}: ${bad.message}, twice (the second time on a fresh worker). ${then}`);
  return new RlaifError('ERR_BAD_IMAGE', `${row} has a bad image: ${bad.code}: ${bad.message}. ${then}`);
}

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
  rejects: RejectSink;
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

/**
 * Reads the input a batch at a time, converts the batches in the pool and hands their rows to the writers, in input
 * order. Results are taken from a FIFO of at most TASKS_PER_WORKER × workers tasks: the head is awaited before another
 * batch is read, which bounds memory however slow one batch is.
 */
export async function* convertRows(run: Run): AsyncGenerator<ConvertEvent> {
  const { options, plan, split, pool, writers, rejects, tally, downloads, hubEvents, signal } = run;
  const cacheChannel = `rlaif-v-images-${process.pid}-${randomUUID()}`;
  const keptImages = keptTableBuffer(plan.rows);
  const store = run.store;
  const ranges = run.toRead;
  const batchOptions = {
    imageTimeoutMs: options.imageTimeoutMs,
    reread: rereadBatch,
    task: (batch: SourceBatch): ConvertTask => ({
      seq: batch.firstRow,
      firstRow: batch.firstRow,
      data: batch.data,
      imagePages: batch.imagePages,
      testMask: split.testMask.slice(batch.firstRow, batch.firstRow + batch.rows),
      image: options.image,
      imageDir: batch.imageDir,
      imageRoot: batch.imageRoot,
      cacheChannel,
      keptImages,
      store,
    }),
  };
  const memory = run.memory;
  const { firstRow, endRow } = run.range;
  // Checkpoints are taken where units of work end, and at the end of a part; the input is read in batches that never
  // cross one.
  const from = run.resumed?.row ?? firstRow;
  const unitEnds = [
    ...planUnits(plan, options.checkpointBytes)
      .map((unit) => unit.firstRow + unit.rows)
      .filter((end) => end > from && end < endRow),
    endRow,
  ];
  const recent = new RecentRows(options.rowGroupSize);
  let position = from;
  let nextCut = 0;

  const checkpoint = async (row: number): Promise<void> => {
    // Only while the staging directory is still this run's: a run suspended past its lock's life stops here.
    await run.lock.verify();
    const segments = await rejects.cut();
    const states = await writers.checkpoint();
    const splits: Record<string, SplitWriterState> = {};
    const pendingFrom: Record<string, number | null> = {};
    for (const name of SPLITS) {
      const state = states[name];
      if (state === undefined) continue;
      splits[name] = state.state;
      pendingFrom[name] = recent.firstOfLast(name, state.pending);
    }
    const written: Checkpoint = { version: 1, fingerprint: run.fingerprint, row, splits, pendingFrom, rejects: { segments, counts: rejects.counts } };
    if (Object.keys(run.finished).length > 0) written.finished = { ...run.finished };
    await writeCheckpoint(run.staging, written);
    run.lastCheckpoint = written;
  };
  /** Takes one result, whose rows start at input row `first`. */
  const collect = async (result: ConvertResult, first: number): Promise<void> => {
    const failure = options.onBadImage === 'fail' ? badImageError(result.rejects) : null;
    if (failure !== null) throw failure;
    const writeStarted = performance.now();
    const parts: Partial<Record<SplitName, SplitPart>> = {};
    if (result.train !== null) parts.train = result.train;
    if (result.test !== null) parts.test = result.test;
    await writers.append(parts);
    run.memory.observe();
    tally.writeMs += performance.now() - writeStarted;
    await rejects.write(result.rejects);
    // Which input row each appended row came from: those not rejected.
    const rejected = new Set(result.rejects.map((row) => row.index));
    for (let row = first; row < first + result.rows; row++) if (!rejected.has(row)) recent.add(split.testMask[row] === 1 ? 'test' : 'train', row);
    tally.add(result);
    position = Math.max(position, first + result.rows);
  };
  const inFlight: { batch: SourceBatch; result: Promise<ConvertResult>; bytes: number }[] = [];
  const take = async (): Promise<void> => {
    const head = inFlight.shift();
    if (head === undefined) return;
    let first = head.batch.firstRow;
    const results = await runBatch(pool, head.batch, batchOptions, head.result);
    // From here its images are the writer's, counted in writers.bytes.
    memory.release(head.bytes);
    for (const result of results) {
      await collect(result, first);
      first += result.rows;
    }
    if (unitEnds[nextCut] === position) {
      nextCut++;
      await checkpoint(position);
    }
  };
  const bytesAt = bytesBefore(plan);
  const bytes = { first: bytesAt(firstRow), total: bytesAt(endRow) - bytesAt(firstRow) };
  const progress = (): ConvertEvent => ({
    type: 'progress',
    stage: 'convert',
    done: position - firstRow,
    total: endRow - firstRow,
    bytes: { done: bytesAt(position) - bytes.first, total: bytes.total },
  });

  // A full pipeline holds TASKS_PER_WORKER batches a worker, and about two more in the writer's hands.
  const maxBatchBytes = Math.min(MAX_BATCH_BYTES, Math.max(2 ** 16, Math.floor(options.maxBytesInFlight / (TASKS_PER_WORKER * options.numProc + 2))));
  const onHeld = (delta: number): void => (delta >= 0 ? memory.add(delta) : memory.release(-delta));
  const batches = readBatches(plan, options.writerBatchSize, { ranges, cuts: unitEnds, maxBatchBytes, onHeld });
  for (;;) {
    // The next batch is read once there is a worker for it, and room in the memory budget for a batch of the largest
    // size: batches ahead of it are written first. With nothing else to wait for (but rows waiting in the writer for
    // their row group to fill), it goes whatever its size.
    while (inFlight.length >= options.numProc * TASKS_PER_WORKER || memory.held() + maxBatchBytes > options.maxBytesInFlight) {
      if (inFlight.length > 0) await take();
      else if (writers.queued > 0) await writers.flush();
      else break;
      yield* hubEvents.take();
      if (downloads !== null && !downloads.finished) yield downloads.event();
      yield progress();
    }
    const readStarted = performance.now();
    const pending = batches.next();
    // While the next file is still downloading, report the download instead of sitting silent.
    while (downloads !== null && !downloads.finished && (await Promise.race([pending.then(() => false), downloads.changed().then(() => true)]))) {
      yield* hubEvents.take();
      yield downloads.event();
    }
    yield* hubEvents.take();
    const next = await pending;
    tally.readMs += performance.now() - readStarted;
    if (next.done === true) break;
    signal?.throwIfAborted();
    const batch = next.value;
    const bytes = batchBytes(batch);
    memory.add(bytes);
    const result = startBatch(pool, batch, batchOptions);
    // Only where the batch came from stays here: its data went to the worker, and is read again if that worker dies.
    inFlight.push({ batch: { ...batch, data: [], imagePages: undefined }, result, bytes });
  }
  while (inFlight.length > 0) {
    await take();
    signal?.throwIfAborted();
    yield progress();
  }
}

/**
 * Closes every split's shards (cutting them again where their plan did not hold), telling rows rewritten. Each split
 * finished is added to the run's checkpoint (at the input's end, where the last was taken) before its files cut again
 * replace its old ones: a run killed at any step from here is taken up with the finished splits as they are, and
 * finishes only the rest. A split the run took up finished is only settled.
 */
export async function* finishSplits(run: Run): AsyncGenerator<ConvertEvent, Partial<Record<SplitName, SplitReport>>> {
  const { writers, signal } = run;
  const splits: Partial<Record<SplitName, SplitReport>> = {};
  let rewritten = 0;
  const toRewrite = writers.rows('train') + writers.rows('test');
  for (const name of SPLITS) {
    let result = run.finished[name];
    if (result === undefined) {
      const cutting = writers.cut(name);
      for (;;) {
        const step = await cutting.next();
        if (step.done === true) {
          result = step.value;
          break;
        }
        rewritten += step.value;
        signal?.throwIfAborted();
        yield { type: 'progress', stage: 'write', done: rewritten, total: toRewrite };
      }
      await recordFinished(run, name, result);
    }
    const settled = await settleSplit(run.staging, result);
    if (settled.rows > 0) splits[name] = { rows: settled.rows, numBytes: settled.nbytes, files: settled.files, resharded: settled.resharded };
  }
  return splits;
}

/** Adds a finished split to the run's last checkpoint, taken where the input ends, and writes it (see finishSplits). */
async function recordFinished(run: Run, name: SplitName, result: WrittenSplit): Promise<void> {
  const last = run.lastCheckpoint;
  if (last === null || last.row !== run.range.endRow) throw new Error(`the last checkpoint is at row ${last?.row ?? 'none'}, not at the end of the input (${run.range.endRow})`);
  run.finished[name] = result;
  const { [name]: _state, ...splits } = last.splits;
  const { [name]: _pending, ...pendingFrom } = last.pendingFrom;
  const checkpoint: Checkpoint = { ...last, splits, pendingFrom, finished: { ...run.finished } };
  await run.lock.verify();
  await writeCheckpoint(run.staging, checkpoint);
  run.lastCheckpoint = checkpoint;
}
