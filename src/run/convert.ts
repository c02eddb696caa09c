import sharp from 'sharp'; // loaded in the main thread first, as sharp advises for use from worker threads on glibc
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { resolveConvertOptions, type ConvertOptions, type ResolvedConvertOptions } from '../options/convert-options.js';
import { reportCard } from './dataset-card.js';
import { AccountingError, OutputError, RlaifError } from '../errors.js';
import type { HubSettings } from '../hub/hub-settings.js';
import type { InputPlan } from '../plan/inspect-input.js';
import { processCpuSeconds, threadCpuSeconds, threadsSummary } from '../util/measure-cpu.js';
import { workerUrl } from '../util/paths.js';
import { createPool } from '../util/worker-pool.js';
import type { ConvertEvent, ConvertReport, SplitName, SplitReport } from './convert-report.js';
import { packageInfo } from '../util/package-info.js';
import { planConversion, type Planned } from './plan-conversion.js';
import { BytesInFlight } from './bytes-in-flight.js';
import { RejectSink } from '../write/reject-sink.js';
import type { ConvertResult, ConvertTask } from '../work/protocol.js';
import { openImageStore } from '../image/open-image-store.js';
import { trimImageStore } from '../image/trim-image-store.js';
import { rowNbytes, toConversational } from '../output/to-conversational.js';
import { imageFilesDigest, runFingerprint } from '../plan/run-fingerprint.js';
import { makeDirectory, openStaging, ownDirectory, stagingDir, type Staging } from '../dirs/staging.js';
import { markPublishing, outputIdentity, publishOutput } from '../dirs/publish-output.js';
import { partDir, partsDir, writePartManifest } from './part-manifest.js';
import { checkNoParts, checkPartsRoot, finishedPart, finishedPartProblem } from './part-staging.js';
import { clearStaging, CHECKPOINT_FILE, findCheckpoint, rowsToRead, type Checkpoint } from './checkpoint.js';
import { LOGICAL_COLUMNS } from '../source/source-layout.js';
import { outputArrowSchemaValue } from '../output/output-schema.js';
import { WriterThread } from '../write/writer-thread.js';
import type { SplitWriterOptions } from '../write/split-writer.js';
import { drain } from '../util/drain.js';
import { LockLostError } from '../dirs/file-lock.js';
import { removeMarkedDirectory } from '../dirs/tool-marker.js';
import { holdParquetReader } from '../parquet/parquet-reader.js';
import { convertRows, finishSplits, Tally, type Run } from './convert-rows.js';

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

function seconds(since: number): number {
  return Math.round((performance.now() - since) / 10) / 100;
}

/** Per-row bytes every output row has besides its texts and image: roles, part types, list and string offsets. */
const ROW_OVERHEAD = rowNbytes(toConversational('', '', '', { bytes: new Uint8Array(0), path: null }));

/**
 * A split's writer, with its shards planned from the input's footers: the uncompressed bytes of the columns the output
 * keeps, shared out by rows, plus each row's fixed overhead.
 */
function splitWriter(name: SplitName, rows: number, plan: InputPlan, options: ResolvedConvertOptions, dir: string, start: number | undefined): SplitWriterOptions {
  const estimatedNbytes = Math.round((plan.outputBytes * rows) / plan.rows) + rows * ROW_OVERHEAD;
  return {
    ...(start === undefined ? {} : { start }),
    split: name,
    dir,
    plannedRows: rows,
    estimatedNbytes,
    maxShardSize: options.maxShardSize,
    rowGroupSize: options.rowGroupSize,
    arrowSchema: outputArrowSchemaValue(),
  };
}

/**
 * A part's directory, `<output>.partial/parts/I-of-K/`, taken for this run: the staging directory the parts share is
 * made (marked as this tool's, for `output`) or must be one this tool made so.
 */
async function openPartStaging(output: string, part: { index: number; count: number }): Promise<Staging> {
  await makeDirectory(path.dirname(output), 'the output');
  await ownDirectory(stagingDir(output), 'staging', { output: path.basename(output), what: `the staging directory of ${output}` });
  await makeDirectory(partsDir(output), 'the output');
  return openStaging(partDir(output, part), 'part');
}

/** Rows in must equal rows out plus rows rejected: anything else is a bug, and no output is published. */
function checkAccounting(rowsIn: number, rowsOut: number, rowsRejected: number): void {
  if (rowsOut + rowsRejected === rowsIn) return;
  throw new AccountingError(
    `Rows in (${rowsIn}) do not equal rows out (${rowsOut}) plus rows rejected (${rowsRejected}). ` +
      'This is a bug; the output was not written. Please report it with the command you ran.',
  );
}

/** Seconds and CPU a run took, measured by convertIter. */
interface RunTimes {
  started: number;
  cpuStarted: { process: number; mainThread: number | null };
  planSeconds: number;
  convertSeconds: number;
  writeSeconds: number;
  mainThreadBusy: number;
}

function report(run: Run, splits: Partial<Record<SplitName, SplitReport>>, bytesOut: number, times: RunTimes): ConvertReport {
  const { options, plan, source, rejects, tally, output } = run;
  const rowsOut = (splits.train?.rows ?? 0) + (splits.test?.rows ?? 0);
  const fraction = rejects.rows / Math.max(1, run.range.endRow - run.range.firstRow);
  const round = (value: number): number => Math.round(value * 100) / 100;
  const mainThreadCpu = threadCpuSeconds();
  const writer = run.writers.thread;
  const threads = threadsSummary(tally.workerThreads, writer === null ? new Map() : new Map([[writer.id, writer.cpu]]));
  return {
    tool: { name: packageInfo.name, version: packageInfo.version },
    ok: fraction <= options.maxRejectFraction,
    fingerprint: run.fingerprint,
    input: {
      ...(source === null
        ? {}
        : { dataset: { repo: source.repo, revision: source.revision, commit: source.commit, filesDownloaded: source.files.filter((file) => !file.cached).length } }),
      files: plan.files.map((file) => ({ path: file.path, rows: file.rows, bytes: file.size, rowGroups: file.rowGroups.length, footerSha256: file.footerSha256 })),
      ...(plan.duplicates === undefined ? {} : { duplicates: plan.duplicates }),
      ...(run.sourceCard === null ? {} : { card: run.sourceCard }),
      rows: plan.rows,
      bytes: plan.bytes,
    },
    output: { dir: run.part === null ? output : run.staging, rows: rowsOut, bytes: bytesOut, splits },
    rejected: { rows: rejects.rows, fraction, byCode: rejects.counts, file: run.part === null ? rejects.file : null },
    ...(run.resumeNote === undefined ? {} : { resume: run.resumeNote }),
    ...(run.part === null ? {} : { part: { ...run.part, host: hostname(), output: run.output } }),
    images: tally.images,
    memory: { maxBytesInFlight: run.memory.budget, peakBytesInFlight: run.memory.peak },
    seconds: {
      plan: times.planSeconds,
      convert: times.convertSeconds,
      read: round(tally.readMs / 1000),
      images: round(tally.workerSeconds.images),
      format: round(tally.workerSeconds.format),
      write: times.writeSeconds,
      total: seconds(times.started),
    },
    cpu: {
      mainThreadBusy: Math.round(times.mainThreadBusy * 1000) / 1000,
      mainThread: mainThreadCpu === null || times.cpuStarted.mainThread === null ? null : round(mainThreadCpu - times.cpuStarted.mainThread),
      process: round(processCpuSeconds() - times.cpuStarted.process),
      ...(threads === null ? {} : { threads }),
    },
    options: {
      numProc: options.numProc,
      writerBatchSize: options.writerBatchSize,
      testSize: options.testSize,
      seed: options.seed,
      images: options.image.mode,
      quality: options.image.quality,
      maxSide: options.image.maxSide,
      maxPixels: options.image.maxPixels,
      maxShardSize: options.maxShardSize,
      maxRejectFraction: options.maxRejectFraction,
      onBadImage: options.onBadImage,
      ...(LOGICAL_COLUMNS.some((logical) => options.columns[logical] !== logical) ? { columns: options.columns } : {}),
    },
  };
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
  const signal = runOptions.signal;
  // Started first: the workers load their modules and compile the check while the input is planned.
  const pool = createPool<ConvertTask, ConvertResult>({
    filename: (runOptions.workerUrl ?? WORKER_URL).href,
    minThreads: options.numProc,
    maxThreads: options.numProc,
    idleTimeout: 1000,
    // Between tasks a worker returns to its event loop, where it hears what the other workers prepared (their
    // BroadcastChannel messages): with 'sync', the default, it takes the next task at once and hears nothing until it
    // idles, so repeated images were checked again (249 of 399 repeats reused on the bench sample, against 320).
    atomics: 'async',
  });
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

    const fingerprint = runFingerprint(plan, options, await imageFilesDigest(plan));
    // The output a run killed as it published was put in place just now: when it is the one this run would make, this
    // run is done; otherwise it is an output like any other, replaced only with overwrite.
    if (planned.restored && !options.overwrite) {
      const finished = await readFile(path.join(output, 'report.json'), 'utf8').then((text) => JSON.parse(text) as ConvertReport, () => null);
      if (finished?.fingerprint !== fingerprint || planned.part !== null) {
        throw new OutputError('ERR_OUTPUT_EXISTS', `${output} already exists. Replace it with the overwrite option (--overwrite), or choose another output.`);
      }
      yield { type: 'done', report: finished };
      return finished;
    }
    const part = planned.part;
    const range = part ?? { firstRow: 0, endRow: plan.rows };
    if (part !== null) await checkPartsRoot(output);
    else await checkNoParts(output, options.resume);
    const staging = part === null ? await openStaging(stagingDir(output), 'staging', output) : await openPartStaging(output, part);
    // Checked again now that this run holds its directory: a part (or a whole run) may have started meanwhile.
    try {
      if (part !== null) await checkPartsRoot(output);
      else await checkNoParts(output, options.resume);
    } catch (error) {
      await staging.release();
      throw error;
    }
    let resumed: Checkpoint | null = null;
    let resumeNote: ConvertReport['resume'];
    let toRead: [number, number][] = [[range.firstRow, range.endRow]];
    if (staging.adopted) {
      const finished = part === null || !options.resume ? null : await finishedPart(staging.dir, fingerprint);
      if (finished !== null) {
        await staging.release();
        yield { type: 'part-finished', staging: staging.dir };
        yield { type: 'done', report: finished.report };
        return finished.report;
      }
      const found = options.resume ? await findCheckpoint(staging.dir, fingerprint, await finishedPartProblem(staging.dir, fingerprint)) : { checkpoint: null, reason: 'resume is off (--no-resume)' };
      resumed = found.checkpoint;
      toRead = rowsToRead(found.checkpoint, split, [range.firstRow, range.endRow]);
      const rowsReused = range.endRow - range.firstRow - toRead.reduce((sum, [start, end]) => sum + end - start, 0);
      resumeNote = found.checkpoint === null ? { resumed: false, reason: found.reason } : { resumed: true, rowsReused };
      yield found.checkpoint === null
        ? { type: 'resume', resumed: false, staging: staging.dir, reason: found.reason }
        : { type: 'resume', resumed: true, staging: staging.dir, rowsReused };
    }
    await clearStaging(staging.dir, resumed);
    await makeDirectory(path.join(staging.dir, 'data'), 'the output');
    // A part's rows of each split start where its rows before the part end, were none of them rejected.
    const testBefore = split.testMask.subarray(0, range.firstRow).reduce((sum, bit) => sum + bit, 0);
    // A split the run taken up had finished needs no writer.
    const finished = resumed?.finished ?? {};
    const writerOptions = {
      train: splitWriter('train', split.trainRows, plan, options, staging.dir, part === null ? undefined : range.firstRow - testBefore),
      test: splitWriter('test', split.testRows, plan, options, staging.dir, part === null ? undefined : testBefore),
    };
    const writers = new WriterThread(Object.fromEntries(Object.entries(writerOptions).filter(([name]) => finished[name] === undefined)), resumed?.splits);
    const run: Run = {
      ...planned,
      options,
      signal,
      pool,
      writers,
      memory: new BytesInFlight(options.maxBytesInFlight, () => writers.bytes),
      lock: staging,
      rejects: new RejectSink(staging.dir, resumed?.rejects),
      tally: new Tally(),
      staging: staging.dir,
      fingerprint,
      resumed,
      lastCheckpoint: resumed,
      finished: { ...finished },
      resumeNote,
      toRead,
      range,
      store: options.cache === null ? null : (await openImageStore(options.cache.dir, options.image, { ...sharp.versions })).settings,
    };
    let published = false;
    let lockLost = false;
    /** Set once the finished output is being moved into place: a failure then leaves it in the staging directory. */
    let publishing = false;
    try {
      const convertStarted = performance.now();
      const loopStarted = performance.eventLoopUtilization();
      yield* convertRows(run);
      const convertSeconds = seconds(convertStarted);
      await pool.destroy();
      // The workers are gone, their logs of verdicts closed: the cache is kept within its bound.
      if (options.cache !== null) await trimImageStore(options.cache.dir, options.cache.maxBytes).catch(() => undefined);

      const writeStarted = performance.now();
      const splits = yield* finishSplits(run);
      await writers.close();
      // A part's rejects stay in their segments, for finalize to join with the other parts'.
      const segments = part === null ? null : await run.rejects.cut();
      if (part === null) await run.rejects.finish();
      const writeSeconds = Math.round((run.tally.writeMs + performance.now() - writeStarted) / 10) / 100;
      const mainThreadBusy = performance.eventLoopUtilization(loopStarted).utilization;

      checkAccounting(range.endRow - range.firstRow, (splits.train?.rows ?? 0) + (splits.test?.rows ?? 0), run.rejects.rows);
      const bytesOut = Object.values(splits).reduce((total, split) => total + split.files.reduce((sum, file) => sum + file.size, 0), 0);
      const times = { started, cpuStarted, planSeconds, convertSeconds, writeSeconds, mainThreadBusy };
      if (part !== null && segments !== null) {
        const done = report(run, splits, bytesOut, times);
        signal?.throwIfAborted();
        // Last, and atomically: the part is finished once its manifest is there.
        await staging.verify();
        await writePartManifest(staging.dir, { version: 1, fingerprint, part, planned: { train: split.trainRows, test: split.testRows }, rejects: segments, report: done });
        await rm(path.join(staging.dir, CHECKPOINT_FILE), { force: true });
        await staging.release();
        published = true;
        yield { type: 'done', report: done };
        return done;
      }
      const done = report(run, splits, bytesOut, times);
      await writeFile(path.join(staging.dir, 'README.md'), reportCard(done));
      await writeFile(path.join(staging.dir, 'report.json'), `${JSON.stringify(done, null, 2)}\n`);
      signal?.throwIfAborted();
      // From here the output is whole: marked so before its checkpoint goes, a run killed now is finished by the next.
      publishing = true;
      await markPublishing(staging, approved);
      await rm(path.join(staging.dir, CHECKPOINT_FILE), { force: true });
      await run.rejects.removeSegments();
      await publishOutput(staging, output, approved);
      published = true;
      yield { type: 'done', report: done };
      return done;
    } catch (error) {
      lockLost = error instanceof LockLostError;
      throw error;
    } finally {
      if (!published && lockLost) {
        // The staging directory is another run's now: nothing in it is touched, not even what this run was writing.
        await writers.close().catch(() => undefined);
      } else if (!published && publishing) {
        // Finished but not put in place (something took the output's place): kept, for the next run to publish.
        await writers.close().catch(() => undefined);
        await staging.release().catch(() => undefined);
      } else if (!published) {
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
  } finally {
    planned?.downloads?.abort();
    await pool.destroy().catch(() => undefined);
    await releaseReader();
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
