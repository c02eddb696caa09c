import { randomUUID } from 'node:crypto';
import { RlaifError } from '../errors.js';
import type { ConvertEvent } from './convert-report.js';
import { SPLITS, type SplitName } from '../output/splits.js';
import type { Run } from './run.js';
import { readBatches, rereadBatch } from '../read/read-batches.js';
import { batchBytes, type SourceBatch } from '../read/source-batch.js';
import { MAX_BATCH_BYTES } from '../read/page-range.js';
import { runBatch, startBatch, type RunBatchOptions } from '../work/run-batch.js';
import type { ConvertResult, ConvertTask } from '../work/protocol.js';
import type { RejectedRow } from '../source/source-row.js';
import type { SplitPart } from '../write/encode-split.js';
import { RecentRows, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { bytesBefore, planUnits } from '../plan/plan-units.js';
import { keptTableBuffer } from '../image/shared-images.js';
import type { SplitWriterState } from '../write/split-writer.js';

/**
 * The heart of a conversion: the in-order loop that reads batches, converts them in the pool and hands their rows to
 * the writer thread, taking checkpoints (the end of the writing is finishSplits, in finish-splits.ts).
 */

/** Tasks in flight per worker: enough to keep every worker busy while the main thread reads and writes. */
const TASKS_PER_WORKER = 2;

/** Reject codes about a row's text; every other code is about its image (what --on-bad-image decides on). */
const TEXT_CODES = new Set<string>(['missing_text', 'empty_text']);

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

/** The options every batch of a run is converted with: how its task is made, and how it is retried. */
function batchOptions(run: Run): RunBatchOptions {
  const { options, plan, split } = run;
  const cacheChannel = `rlaif-v-images-${process.pid}-${randomUUID()}`;
  const keptImages = keptTableBuffer(plan.rows);
  const store = run.store;
  return {
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
}

/** The input rows at which a run that starts at row `from` takes checkpoints: where units of work end, and its last. */
function checkpointRows(run: Run, from: number): number[] {
  const { endRow } = run.range;
  return [
    ...planUnits(run.plan, run.options.checkpointBytes)
      .map((unit) => unit.firstRow + unit.rows)
      .filter((end) => end > from && end < endRow),
    endRow,
  ];
}

/**
 * Writes the run's checkpoint at input row `row`: the writers' files, the input row of the first row still pending in
 * each (from `recent`), the rejects' segments and the splits finished.
 */
async function takeCheckpoint(run: Run, recent: RecentRows, row: number): Promise<void> {
  // Only while the staging directory is still this run's: a run suspended past its lock's life stops here.
  await run.lock.verify();
  const segments = await run.rejects.cut();
  const states = await run.writers.checkpoint();
  const splits: Record<string, SplitWriterState> = {};
  const pendingFrom: Record<string, number | null> = {};
  for (const name of SPLITS) {
    const state = states[name];
    if (state === undefined) continue;
    splits[name] = state.state;
    pendingFrom[name] = recent.firstOfLast(name, state.pending);
  }
  const written: Checkpoint = { version: 1, fingerprint: run.fingerprint, row, splits, pendingFrom, rejects: { segments, counts: run.rejects.counts } };
  if (Object.keys(run.finished).length > 0) written.finished = { ...run.finished };
  await writeCheckpoint(run.staging, written);
  run.lastCheckpoint = written;
}

/** A batch handed to the pool: where it came from, its result to come, and its bytes held of the memory budget. */
interface BatchInFlight {
  batch: SourceBatch;
  result: Promise<ConvertResult>;
  bytes: number;
}

/**
 * The batches in the pool, oldest first, and their results taken in input order: rows to the writers, rejects to
 * their sink, and a checkpoint wherever the rows taken reach one of `checkpoints` (see checkpointRows).
 */
class InOrder {
  readonly #run: Run;
  readonly #batchOptions: RunBatchOptions;
  readonly #checkpoints: readonly number[];
  #nextCut = 0;
  readonly #recent: RecentRows;
  readonly #inFlight: BatchInFlight[] = [];
  /** Every input row before this one has been taken: written, or rejected. */
  position: number;

  constructor(run: Run, checkpoints: readonly number[], from: number) {
    this.#run = run;
    this.#batchOptions = batchOptions(run);
    this.#checkpoints = checkpoints;
    this.#recent = new RecentRows(run.options.rowGroupSize);
    this.position = from;
  }

  /** Batches in the pool. */
  get length(): number {
    return this.#inFlight.length;
  }

  /** Sends a batch to the pool, its `bytes` counted in the memory budget until its results are taken. */
  start(batch: SourceBatch, bytes: number): void {
    const result = startBatch(this.#run.pool, batch, this.#batchOptions);
    // Only where the batch came from stays here: its data went to the worker, and is read again if that worker dies.
    this.#inFlight.push({ batch: { ...batch, data: [], imagePages: undefined }, result, bytes });
  }

  /** Takes the oldest batch's results (retried by runBatch when its worker fails), and a checkpoint if one falls there. */
  async take(): Promise<void> {
    const head = this.#inFlight.shift();
    if (head === undefined) return;
    let first = head.batch.firstRow;
    const results = await runBatch(this.#run.pool, head.batch, this.#batchOptions, head.result);
    // From here its images are the writer's, counted in writers.bytes.
    this.#run.memory.release(head.bytes);
    for (const result of results) {
      await this.#collect(result, first);
      first += result.rows;
    }
    if (this.#checkpoints[this.#nextCut] === this.position) {
      this.#nextCut++;
      await takeCheckpoint(this.#run, this.#recent, this.position);
    }
  }

  /** Takes one result, whose rows start at input row `first`. */
  async #collect(result: ConvertResult, first: number): Promise<void> {
    const { options, split, writers, rejects, tally } = this.#run;
    const failure = options.onBadImage === 'fail' ? badImageError(result.rejects) : null;
    if (failure !== null) throw failure;
    const writeStarted = performance.now();
    const parts: Partial<Record<SplitName, SplitPart>> = {};
    if (result.train !== null) parts.train = result.train;
    if (result.test !== null) parts.test = result.test;
    await writers.append(parts);
    this.#run.memory.observe();
    tally.writeMs += performance.now() - writeStarted;
    await rejects.write(result.rejects);
    // Which input row each appended row came from: those not rejected.
    const rejected = new Set(result.rejects.map((row) => row.index));
    for (let row = first; row < first + result.rows; row++) if (!rejected.has(row)) this.#recent.add(split.testMask[row] === 1 ? 'test' : 'train', row);
    tally.add(result);
    this.position = Math.max(this.position, first + result.rows);
  }
}

/** Reads the next batch; while the file it comes from is still downloading, reports the download instead of sitting silent. */
async function* readNext(run: Run, batches: AsyncGenerator<SourceBatch>): AsyncGenerator<ConvertEvent, IteratorResult<SourceBatch, void>> {
  const { downloads, hubEvents } = run;
  const readStarted = performance.now();
  const pending = batches.next();
  while (downloads !== null && !downloads.finished && (await Promise.race([pending.then(() => false), downloads.changed().then(() => true)]))) {
    yield* hubEvents.take();
    yield downloads.event();
  }
  yield* hubEvents.take();
  const next = await pending;
  run.tally.readMs += performance.now() - readStarted;
  return next;
}

/**
 * Reads the input a batch at a time, converts the batches in the pool and hands their rows to the writers, in input
 * order. Results are taken from a FIFO of at most TASKS_PER_WORKER × workers tasks: the head is awaited before another
 * batch is read, which bounds memory however slow one batch is.
 */
export async function* convertRows(run: Run): AsyncGenerator<ConvertEvent> {
  const { options, plan, writers, memory, downloads, hubEvents, signal } = run;
  const { firstRow, endRow } = run.range;
  // Checkpoints are taken where units of work end, and at the end of a part; the input is read in batches that never
  // cross one.
  const from = run.resumed?.row ?? firstRow;
  const unitEnds = checkpointRows(run, from);
  const inOrder = new InOrder(run, unitEnds, from);
  const bytesAt = bytesBefore(plan);
  const bytes = { first: bytesAt(firstRow), total: bytesAt(endRow) - bytesAt(firstRow) };
  const progress = (): ConvertEvent => ({
    type: 'progress',
    stage: 'convert',
    done: inOrder.position - firstRow,
    total: endRow - firstRow,
    bytes: { done: bytesAt(inOrder.position) - bytes.first, total: bytes.total },
  });

  // A full pipeline holds TASKS_PER_WORKER batches a worker, and about two more in the writer's hands.
  const maxBatchBytes = Math.min(MAX_BATCH_BYTES, Math.max(2 ** 16, Math.floor(options.maxBytesInFlight / (TASKS_PER_WORKER * options.numProc + 2))));
  const onHeld = (delta: number): void => (delta >= 0 ? memory.add(delta) : memory.release(-delta));
  const batches = readBatches(plan, options.writerBatchSize, { ranges: run.toRead, cuts: unitEnds, maxBatchBytes, onHeld });
  for (;;) {
    // The next batch is read once there is a worker for it, and room in the memory budget for a batch of the largest
    // size: batches ahead of it are written first. With nothing else to wait for (but rows waiting in the writer for
    // their row group to fill), it goes whatever its size.
    while (inOrder.length >= options.numProc * TASKS_PER_WORKER || memory.held() + maxBatchBytes > options.maxBytesInFlight) {
      if (inOrder.length > 0) await inOrder.take();
      else if (writers.queued > 0) await writers.flush();
      else break;
      yield* hubEvents.take();
      if (downloads !== null && !downloads.finished) yield downloads.event();
      yield progress();
    }
    const next = yield* readNext(run, batches);
    if (next.done === true) break;
    signal?.throwIfAborted();
    const batch = next.value;
    const bytes = batchBytes(batch);
    memory.add(bytes);
    inOrder.start(batch, bytes);
  }
  while (inOrder.length > 0) {
    await inOrder.take();
    signal?.throwIfAborted();
    yield progress();
  }
}
