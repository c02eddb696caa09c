import sharp from 'sharp'; // loaded in the main thread first, as sharp advises for use from worker threads on glibc
import { randomUUID } from 'node:crypto';
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
import type { Piscina } from 'piscina';
import type { ConvertEvent, ConvertReport, SplitName, SplitReport } from './convert-report.js';
import { packageInfo } from '../util/package-info.js';
import { planConversion, type Planned } from './plan-conversion.js';
import { batchBytes, readBatches, rereadBatch, type SourceBatch } from '../read/read-batches.js';
import { BytesInFlight } from './bytes-in-flight.js';
import { MAX_BATCH_BYTES } from '../read/page-range.js';
import { runBatch, startBatch } from '../work/run-batch.js';
import { RejectSink } from '../write/reject-sink.js';
import type { ConvertResult, ConvertTask, ImageStoreSettings, RejectedRow, SplitPart } from '../types.js';
import { openImageStore, trimImageStore } from '../image/image-store-dir.js';
import { rowNbytes, toConversational } from '../output/to-conversational.js';
import { imageFilesDigest, runFingerprint } from '../plan/run-fingerprint.js';
import { makeDirectory, markPublishing, openStaging, outputIdentity, ownDirectory, publishOutput, stagingDir, type Staging } from '../dirs/output-dir.js';
import { partDir, partsDir, writePartManifest } from './part-manifest.js';
import { checkNoParts, checkPartsRoot, finishedPart, finishedPartProblem } from './part-staging.js';
import { clearStaging, CHECKPOINT_FILE, findCheckpoint, RecentRows, rowsToRead, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { bytesBefore, planUnits } from '../plan/plan-units.js';
import { LOGICAL_COLUMNS } from '../source/source-layout.js';
import { outputArrowSchemaValue } from '../output/output-schema.js';
import { SplitWriters } from '../write/split-writers.js';
import { keptTableBuffer } from '../image/image-cache.js';
import { settleSplit, type SplitWriterOptions, type SplitWriterState, type WrittenSplit } from '../write/write-split.js';
import { drain } from '../util/drain.js';
import { LockLostError } from '../dirs/file-lock.js';
import { removeMarkedDirectory } from '../dirs/tool-marker.js';
import { holdParquetReader } from '../parquet/parquet-reader.js';

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

/** Tasks in flight per worker: enough to keep every worker busy while the main thread reads and writes. */
const TASKS_PER_WORKER = 2;

const SPLITS: readonly SplitName[] = ['train', 'test'];

/** Reject codes about a row's text; every other code is about its image (what --on-bad-image decides on). */
const TEXT_CODES = new Set<string>(['missing_text', 'empty_text']);

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

/** What the conversion counts as it goes, for the report. */
class Tally {
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

type ConvertPool = Piscina<ConvertTask, ConvertResult>;

/** A run under way: its plan and the threads and sinks it works with. */
interface Run extends Planned {
  options: ResolvedConvertOptions;
  signal: AbortSignal | undefined;
  pool: ConvertPool;
  writers: SplitWriters;
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
async function* convertRows(run: Run): AsyncGenerator<ConvertEvent> {
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
async function* finishSplits(run: Run): AsyncGenerator<ConvertEvent, Partial<Record<SplitName, SplitReport>>> {
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
    const writers = new SplitWriters(Object.fromEntries(Object.entries(writerOptions).filter(([name]) => finished[name] === undefined)), resumed?.splits);
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
