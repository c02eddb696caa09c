import { rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveConvertOptions, type ConvertOptions, type ResolvedConvertOptions } from '../options/convert-options.js';
import { reportCard } from './dataset-card.js';
import { AccountingError, OutputError, RlaifError } from '../errors.js';
import type { HubSettings } from '../hub/hub-settings.js';
import type { PartRange } from '../plan/plan-units.js';
import { processCpuSeconds, threadCpuSeconds } from '../util/measure-cpu.js';
import { workerUrl } from '../util/paths.js';
import { createPool } from '../util/worker-pool.js';
import type { ConvertEvent, ConvertReport, SplitName, SplitReport } from './convert-report.js';
import { planConversion, type Planned } from './plan-conversion.js';
import type { RejectSegment } from '../write/rejects-file.js';
import type { ConvertResult, ConvertTask } from '../work/protocol.js';
import { trimImageStore } from '../image/trim-image-store.js';
import { markPublishing, outputIdentity, publishOutput, type OutputIdentity } from '../dirs/publish-output.js';
import { writePartManifest } from './part-manifest.js';
import { CHECKPOINT_FILE } from './checkpoint.js';
import { drain } from '../util/drain.js';
import { LockLostError } from '../dirs/file-lock.js';
import { removeMarkedDirectory } from '../dirs/tool-marker.js';
import { holdParquetReader } from '../parquet/parquet-reader.js';
import { convertRows } from './convert-rows.js';
import type { ConvertPool, Run } from './run.js';
import { finishSplits } from './finish-splits.js';
import { openRun } from './open-run.js';
import { runReport, seconds, type RunTimes } from './run-report.js';

export type { ConvertOptions } from '../options/convert-options.js';

export interface ConvertRunOptions extends ConvertOptions {
  /** Stops the run; everything written so far is removed. */
  signal?: AbortSignal;
  /** The worker module, instead of the built-in one: for tests that make workers crash or hang. */
  workerUrl?: URL;
  /** Where the Hub is, the token and the cache, for `dataset`. Default: read from the environment ({@link hubSettings}). */
  hub?: HubSettings;
}

const WORKER_URL = workerUrl('convert-batch');

/** Rows in must equal rows out plus rows rejected: anything else is a bug, and no output is published. */
function checkAccounting(rowsIn: number, rowsOut: number, rowsRejected: number): void {
  if (rowsOut + rowsRejected === rowsIn) return;
  throw new AccountingError(
    `Rows in (${rowsIn}) do not equal rows out (${rowsOut}) plus rows rejected (${rowsRejected}). ` +
      'This is a bug; the output was not written. Please report it with the command you ran.',
  );
}

/** Starts the conversion's worker pool. */
function startPool(options: ResolvedConvertOptions, url: URL): ConvertPool {
  return createPool<ConvertTask, ConvertResult>({
    filename: url.href,
    minThreads: options.numProc,
    maxThreads: options.numProc,
    idleTimeout: 1000,
    // Between tasks a worker returns to its event loop, where it hears what the other workers prepared (their
    // BroadcastChannel messages): with 'sync', the default, it takes the next task at once and hears nothing until it
    // idles, so repeated images were checked again (249 of 399 repeats reused on the bench sample, against 320).
    atomics: 'async',
  });
}

/**
 * Converts the input to TRL's conversational format, yielding typed progress events and, last, a `done` event with
 * the report. {@link convert} drains it; the CLI renders it.
 *
 * @throws {OptionError} for a bad option, {@link InputError} for input that cannot be converted (before any work),
 * {@link OutputError} when the output exists or cannot be written, {@link RlaifError} `ERR_BAD_IMAGE` at the first
 * bad image with `onBadImage: 'fail'` (`ERR_WORKER_FAILED` or `ERR_IMAGE_TIMEOUT` when a worker died or hung on the
 * row instead). A worker that dies or hangs does not fail the run: its rows are retried and the
 * culprit rejected.
 * A run that throws leaves no output directory behind. One stopped by `signal` after a checkpoint leaves
 * `<output>.partial`, which the same call (same input and options) takes up (see README, "Resume after a crash").
 */
export async function* convertIter(runOptions: ConvertRunOptions): AsyncGenerator<ConvertEvent, ConvertReport> {
  const started = performance.now();
  const cpuStarted = { process: processCpuSeconds(), mainThread: threadCpuSeconds() };
  const options = resolveConvertOptions(runOptions);
  // Started first: the workers load their modules and compile the check while the input is planned.
  const pool = startPool(options, runOptions.workerUrl ?? WORKER_URL);
  let planned: Planned | null = null;
  const releaseReader = holdParquetReader();
  try {
    planned = yield* planConversion(options, runOptions);
    const { plan, split, output } = planned;
    // What is at the output now (nothing, or the output overwrite may replace): what must still be there to publish.
    const approved = await outputIdentity(output);
    const planSeconds = seconds(started);
    yield {
      type: 'planned',
      files: plan.files.length,
      rows: plan.rows,
      trainRows: split.trainRows,
      testRows: split.testRows,
      workers: options.numProc,
      ...(planned.part === null ? {} : { part: planned.part }),
    };
    const opened = yield* openRun(planned, options, runOptions.signal, pool);
    if ('finished' in opened) {
      yield { type: 'done', report: opened.finished };
      return opened.finished;
    }
    return yield* completeRun(opened.run, approved, { started, cpuStarted, planSeconds });
  } finally {
    planned?.downloads?.abort();
    await pool.destroy().catch(() => undefined);
    await releaseReader();
  }
}

/** What convertIter measures before the rows are converted. */
type RunClock = Pick<RunTimes, 'started' | 'cpuStarted' | 'planSeconds'>;

/** How far a run got towards its end: what {@link abandonRun} leaves depends on it. */
interface RunEnd {
  /** Set once the finished output is being moved into place: a failure then leaves it in the staging directory. */
  publishing: boolean;
  published: boolean;
  /** The staging directory's lock was lost: the directory is another run's. */
  lockLost: boolean;
}

/**
 * Takes an opened run to its end: converts its rows, finishes the writing, and publishes the output (for a part, writes
 * its manifest). A run that does not get there is abandoned (see abandonRun).
 */
async function* completeRun(run: Run, approved: OutputIdentity | null, clock: RunClock): AsyncGenerator<ConvertEvent, ConvertReport> {
  const end: RunEnd = { publishing: false, published: false, lockLost: false };
  try {
    const written = yield* convertAndWrite(run, clock);
    const done = runReport(run, written.splits, written.bytesOut, written.times);
    if (run.part !== null && written.segments !== null) await finishPart(run, run.part, written.segments, done);
    else await finishWhole(run, done, approved, end);
    end.published = true;
    yield { type: 'done', report: done };
    return done;
  } catch (error) {
    end.lockLost = error instanceof LockLostError;
    throw error;
  } finally {
    if (!end.published) await abandonRun(run, end);
  }
}

/** What {@link convertAndWrite} leaves for the end of the run. */
interface Written {
  splits: Partial<Record<SplitName, SplitReport>>;
  /** A part's reject segments, for its manifest; null for a whole run, whose rejects are finished. */
  segments: RejectSegment[] | null;
  bytesOut: number;
  times: RunTimes;
}

/**
 * Converts the run's rows and finishes its writing: the pool is let go (and the image cache trimmed) once every row
 * is converted, the splits' shards closed, the rejects finished (a part's cut into segments).
 *
 * @throws {AccountingError} when the rows do not add up.
 */
async function* convertAndWrite(run: Run, clock: RunClock): AsyncGenerator<ConvertEvent, Written> {
  const { options, part, range } = run;
  const convertStarted = performance.now();
  const loopStarted = performance.eventLoopUtilization();
  yield* convertRows(run);
  const convertSeconds = seconds(convertStarted);
  await run.pool.destroy();
  // The workers are gone, their logs of verdicts closed: the cache is kept within its bound.
  if (options.cache !== null) await trimImageStore(options.cache.dir, options.cache.maxBytes, run.store?.run ?? null).catch(() => undefined);

  const writeStarted = performance.now();
  const splits = yield* finishSplits(run);
  await run.writers.close();
  // A part's rejects stay in their segments, for finalize to join with the other parts'.
  const segments = part === null ? null : await run.rejects.cut();
  if (part === null) await run.rejects.finish();
  const writeSeconds = Math.round((run.tally.writeMs + performance.now() - writeStarted) / 10) / 100;
  const mainThreadBusy = performance.eventLoopUtilization(loopStarted).utilization;

  checkAccounting(range.endRow - range.firstRow, (splits.train?.rows ?? 0) + (splits.test?.rows ?? 0), run.rejects.rows);
  const bytesOut = Object.values(splits).reduce((total, split) => total + split.files.reduce((sum, file) => sum + file.size, 0), 0);
  return { splits, segments, bytesOut, times: { ...clock, convertSeconds, writeSeconds, mainThreadBusy } };
}

/** Finishes a part: writes its manifest, which says it is finished, and lets its directory go. */
async function finishPart(run: Run, part: PartRange, segments: RejectSegment[], done: ConvertReport): Promise<void> {
  run.signal?.throwIfAborted();
  // Last, and atomically: the part is finished once its manifest is there.
  await run.lock.verify();
  await writePartManifest(run.staging, { version: 1, fingerprint: run.fingerprint, part, planned: { train: run.split.trainRows, test: run.split.testRows }, rejects: segments, report: done });
  await rm(path.join(run.staging, CHECKPOINT_FILE), { force: true });
  await run.lock.release();
}

/**
 * Finishes a whole run: writes the card and report.json beside the data, then publishes the staging directory as the
 * output (`end.publishing` set from the moment it is marked so).
 */
async function finishWhole(run: Run, done: ConvertReport, approved: OutputIdentity | null, end: RunEnd): Promise<void> {
  await writeFile(path.join(run.staging, 'README.md'), reportCard(done));
  await writeFile(path.join(run.staging, 'report.json'), `${JSON.stringify(done, null, 2)}\n`);
  run.signal?.throwIfAborted();
  // From here the output is whole: marked so before its checkpoint goes, a run killed now is finished by the next.
  end.publishing = true;
  await markPublishing(run.lock, approved);
  await rm(path.join(run.staging, CHECKPOINT_FILE), { force: true });
  await run.rejects.removeSegments();
  await publishOutput(run.lock, run.output, approved);
}

/**
 * Leaves behind what a run that did not finish should: the staging directory untouched when it is another run's now,
 * kept when the output was finished (for the next run to publish) or when the run was stopped from outside after a
 * checkpoint (for the same command to take up); otherwise removed.
 */
async function abandonRun(run: Run, end: RunEnd): Promise<void> {
  const { writers, lock: staging, signal } = run;
  if (end.lockLost) {
    // The staging directory is another run's now: nothing in it is touched, not even what this run was writing.
    await writers.close().catch(() => undefined);
  } else if (end.publishing) {
    // Finished but not put in place (something took the output's place): kept, for the next run to publish.
    await writers.close().catch(() => undefined);
    await staging.release().catch(() => undefined);
  } else {
    await run.rejects.abort().catch(() => undefined);
    await staging.release().catch(() => undefined);
    // Stopped from outside (Ctrl-C, SIGTERM, a caller's signal) after a checkpoint: the staging directory stays as
    // it is, for the same command to take up. Any other failure would only happen again: nothing is left.
    const checkpointed = (await stat(path.join(staging.dir, CHECKPOINT_FILE)).catch(() => null)) !== null;
    if (signal?.aborted === true && checkpointed) {
      await writers.close().catch(() => undefined);
    } else {
      await writers.abort().catch(() => undefined);
      await removeMarkedDirectory(staging.dir);
    }
  }
}

/**
 * Converts the input and resolves with the report once the output directory is complete. See {@link convertIter} for
 * progress events and the errors it throws.
 *
 * @example
 * const report = await convert({ input: ['RLAIF-V-Dataset/'], output: 'rlaif-v', numProc: 8 });
 * console.log(report.output.splits.test?.rows);
 */
export async function convert(options: ConvertRunOptions): Promise<ConvertReport> {
  return drain(convertIter(options));
}
