import 'sharp'; // loaded in the main thread first, as sharp advises for use from worker threads on glibc
import { randomUUID } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveConvertOptions, type ConvertOptions, type ResolvedConvertOptions } from './convert-options.js';
import { datasetCard } from './dataset-card.js';
import { AccountingError, OutputError, RlaifError } from './errors.js';
import { DatasetDownloads, remoteBlob, resolveDataset, type DatasetSource, type DownloadEvent } from './download-dataset.js';
import { EventQueue } from './event-queue.js';
import { hubSettings, withSignal, type HubSettings } from './hub-settings.js';
import type { RetryEvent } from './retry-fetch.js';
import { inspectInput, inspectSources, type InputPlan, type InputSource } from './inspect-input.js';
import { processCpuSeconds, threadCpuSeconds, threadsSummary } from './measure-cpu.js';
import { workerUrl } from './worker-url.js';
import { createPool } from './worker-pool.js';
import type { ConvertEvent, ConvertReport, SplitName, SplitReport } from './convert-report.js';
import { packageInfo } from './package-info.js';
import { planSplit, type SplitPlan } from './plan-split.js';
import { readBatches, rereadBatch, type SourceBatch } from './read-batches.js';
import { runBatch, startBatch } from './run-batch.js';
import { RejectSink } from './reject-sink.js';
import type { ConvertResult, ConvertTask, SplitPart } from './types.js';
import { rowNbytes, toConversational } from './to-conversational.js';
import { checkOutputDir, clearLeftovers, makeStaging, publishOutput } from './output-dir.js';
import { outputArrowSchemaValue } from './output-schema.js';
import { SplitWriters } from './split-writers.js';
import { keptTableBuffer } from '../workers/image-cache.js';
import type { SplitWriterOptions } from './write-split.js';

export type { ConvertOptions } from './convert-options.js';

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
function splitWriter(name: SplitName, rows: number, plan: InputPlan, options: ResolvedConvertOptions, dir: string): SplitWriterOptions {
  const estimatedNbytes = Math.round((plan.outputBytes * rows) / plan.rows) + rows * ROW_OVERHEAD;
  return {
    split: name,
    dir,
    plannedRows: rows,
    estimatedNbytes,
    maxShardSize: options.maxShardSize,
    rowGroupSize: options.rowGroupSize,
    arrowSchema: outputArrowSchemaValue(),
  };
}

/** The dataset's files for planning: footers of cached files read from disk, of the others from the Hub. */
async function* hubSources(source: DatasetSource, settings: HubSettings, onRetry: (event: RetryEvent) => void): AsyncGenerator<InputSource> {
  for (const file of source.files) {
    const name = `${source.repo}/${file.path}`;
    const blob = file.cached ? await openAsBlob(file.blobPath) : await remoteBlob(source, file, settings, onRetry);
    yield { name, path: file.localPath, blob };
  }
}

/** What planning found: the input's plan, where it came from, the output directory and the split. */
interface Planned {
  plan: InputPlan;
  source: DatasetSource | null;
  downloads: DatasetDownloads | null;
  output: string;
  split: SplitPlan;
  /** Where retries of Hub requests go, to be told at the next chance to yield (downloads go on while converting). */
  hubEvents: EventQueue<DownloadEvent>;
}

/**
 * Clears what killed runs left beside the output, first: a previous output put back is then protected like any other
 * (replaced only with `overwrite`).
 */
async function* leftoversOf(output: string): AsyncGenerator<ConvertEvent> {
  for (const leftover of await clearLeftovers(path.resolve(output))) yield { type: 'leftover', leftover };
}

/** Reads the input's footers (resolving and starting the download of a Hub dataset first) and plans the split. */
async function* planConversion(options: ResolvedConvertOptions, runOptions: ConvertRunOptions): AsyncGenerator<ConvertEvent, Planned> {
  const signal = runOptions.signal;
  const inspectOptions = { maxRowGroupBytes: options.maxRowGroupBytes, streamRowGroupBytes: options.streamRowGroupBytes };
  let downloads: DatasetDownloads | null = null;
  /** Retries of Hub requests, told as they happen. */
  const hubEvents = new EventQueue<DownloadEvent>();
  // Downloads go on in the background from when they start; on any way out but a finished plan, they stop.
  let planned = false;
  try {
    let source: DatasetSource | null = null;
    let plan: InputPlan;
    let output: string;
    if (options.dataset === null) {
      plan = await inspectInput(options.input, inspectOptions);
      yield* leftoversOf(options.output);
      output = await checkOutputDir(options.output, { overwrite: options.overwrite, inputs: options.input });
    } else {
      const settings = withSignal(runOptions.hub ?? (await hubSettings()), signal);
      // Checked before anything is downloaded; the cache is this run's input.
      yield* leftoversOf(options.output);
      output = await checkOutputDir(options.output, { overwrite: options.overwrite, inputs: [settings.cacheDir] });
      const onRetry = (retry: RetryEvent): void => void hubEvents.push({ type: 'retry', retry });
      source = yield* hubEvents.during(resolveDataset({ repo: options.dataset.repo, revision: options.dataset.revision, settings, onRetry }));
      const cached = source.files.filter((file) => file.cached);
      yield {
        type: 'source',
        repo: source.repo,
        revision: source.revision,
        commit: source.commit,
        files: source.files.length,
        cachedFiles: cached.length,
        bytes: source.files.reduce((sum, file) => sum + file.size, 0),
        cachedBytes: cached.reduce((sum, file) => sum + file.size, 0),
      };
      downloads = new DatasetDownloads(source, settings, { signal, onRetry });
      plan = yield* hubEvents.during(inspectSources(hubSources(source, settings, onRetry), inspectOptions));
      const started = downloads;
      const files = plan.files;
      plan.ready = (file) => started.ready(files.indexOf(file));
    }
    const split = planSplit(plan.rows, options.testSize, options.seed);
    planned = true;
    return { plan, source, downloads, output, split, hubEvents };
  } finally {
    if (!planned) downloads?.abort();
  }
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
 * A run that throws leaves no output directory behind.
 */
export async function* convertIter(runOptions: ConvertRunOptions): AsyncGenerator<ConvertEvent, ConvertReport> {
  const started = performance.now();
  const cpuStarted = { process: processCpuSeconds(), mainThread: threadCpuSeconds() };
  const options = resolveConvertOptions(runOptions);
  const signal = runOptions.signal;
  // Started first: the workers load their modules and compile the check while the input is planned.
  const pool = createPool({
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
  try {
    planned = yield* planConversion(options, runOptions);
    const { plan, source, downloads, output, split, hubEvents } = planned;
    const planSeconds = seconds(started);
    yield {
      type: 'planned',
      files: plan.files.length,
      rows: plan.rows,
      trainRows: split.trainRows,
      testRows: split.testRows,
      workers: options.numProc,
    };

    const staging = await makeStaging(output);
    const cacheChannel = `rlaif-v-images-${process.pid}-${randomUUID()}`;
    const writers = new SplitWriters({
      train: splitWriter('train', split.trainRows, plan, options, staging),
      test: splitWriter('test', split.testRows, plan, options, staging),
    });
    const rejects = new RejectSink(staging);
    let published = false;
    try {
      let writeMs = 0;
      const images = { kept: 0, reencoded: 0, distinct: 0, reused: 0, bytesIn: 0 };
      const distinctImages = new Set<string>();
      const workerThreads = new Map<number, number>();
      const workerSeconds = { images: 0, format: 0 };
      let readMs = 0;
      let rowsDone = 0;

      // Results are taken in input order from a FIFO of at most TASKS_PER_WORKER × workers tasks: the head is awaited
      // before another batch is read, which bounds memory however slow one batch is.
      const inFlight: { batch: SourceBatch; result: Promise<ConvertResult> }[] = [];
      const keptImages = keptTableBuffer(plan.rows);
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
          cacheChannel,
          keptImages,
        }),
      };
      const take = async (): Promise<void> => {
        const head = inFlight.shift();
        if (head === undefined) return;
        for (const result of await runBatch(pool, head.batch, batchOptions, head.result)) await collect(result);
      };
      const collect = async (result: ConvertResult): Promise<void> => {
        const badImage = options.onBadImage === 'fail' ? result.rejects.find((row) => !TEXT_CODES.has(row.code)) : undefined;
        if (badImage !== undefined) {
          const row = `Row ${badImage.index} (idx ${JSON.stringify(badImage.row.idx)})`;
          const then = 'Stopped because of --on-bad-image fail; with --on-bad-image skip such rows go to rejects/ and the run goes on.';
          // A worker that died or hung on the row, on a fresh worker too: most likely its image, but not known to be.
          if (badImage.code === 'worker_failed') {
            throw new RlaifError('ERR_WORKER_FAILED', `${row}: ${badImage.message}, twice (the second time on a fresh worker). ${then}`);
          }
          if (badImage.code === 'image_timeout') {
            throw new RlaifError('ERR_IMAGE_TIMEOUT', `${row}: ${badImage.message}, twice (the second time on a fresh worker). ${then}`);
          }
          throw new RlaifError('ERR_BAD_IMAGE', `${row} has a bad image: ${badImage.code}: ${badImage.message}. ${then}`);
        }
        const writeStarted = performance.now();
        const parts: Partial<Record<SplitName, SplitPart>> = {};
        if (result.train !== null) parts.train = result.train;
        if (result.test !== null) parts.test = result.test;
        await writers.append(parts);
        writeMs += performance.now() - writeStarted;
        await rejects.write(result.rejects);
        images.kept += result.stats.imagesKept;
        images.reencoded += result.stats.imagesReencoded;
        images.reused += result.stats.imagesReused;
        for (const key of result.imageKeys) distinctImages.add(key);
        images.distinct = distinctImages.size;
        images.bytesIn += result.stats.imageBytesIn;
        workerSeconds.images += result.stats.imageMs / 1000;
        workerSeconds.format += result.stats.formatMs / 1000;
        if (result.stats.thread !== null) {
          const { id, cpu } = result.stats.thread;
          workerThreads.set(id, Math.max(cpu, workerThreads.get(id) ?? 0));
        }
        rowsDone += result.rows;
      };

      const convertStarted = performance.now();
      const loopStarted = performance.eventLoopUtilization();
      const batches = readBatches(plan, options.writerBatchSize);
      for (;;) {
        const readStarted = performance.now();
        const pending = batches.next();
        // While the next file is still downloading, report the download instead of sitting silent.
        while (downloads !== null && !downloads.finished && (await Promise.race([pending.then(() => false), downloads.changed().then(() => true)]))) {
          yield* hubEvents.take();
          yield downloads.event();
        }
        yield* hubEvents.take();
        const next = await pending;
        readMs += performance.now() - readStarted;
        if (next.done === true) break;
        signal?.throwIfAborted();
        const batch = next.value;
        const result = startBatch(pool, batch, batchOptions);
        // Only where the batch came from stays here: its data went to the worker, and is read again if that worker dies.
        inFlight.push({ batch: { ...batch, data: [], imagePages: undefined }, result });
        while (inFlight.length >= options.numProc * TASKS_PER_WORKER) {
          await take();
          yield* hubEvents.take();
          if (downloads !== null && !downloads.finished) yield downloads.event();
          yield { type: 'progress', stage: 'convert', done: rowsDone, total: plan.rows };
        }
      }
      while (inFlight.length > 0) {
        await take();
        signal?.throwIfAborted();
        yield { type: 'progress', stage: 'convert', done: rowsDone, total: plan.rows };
      }
      const convertSeconds = seconds(convertStarted);
      await pool.destroy();

      const writeStarted = performance.now();
      const splits: Partial<Record<SplitName, SplitReport>> = {};
      let rewritten = 0;
      const toRewrite = writers.rows('train') + writers.rows('test');
      for (const name of SPLITS) {
        const finishing = writers.finish(name);
        for (;;) {
          const step = await finishing.next();
          if (step.done === true) {
            if (step.value.rows > 0) splits[name] = { rows: step.value.rows, numBytes: step.value.nbytes, files: step.value.files, resharded: step.value.resharded };
            break;
          }
          rewritten += step.value;
          signal?.throwIfAborted();
          yield { type: 'progress', stage: 'write', done: rewritten, total: toRewrite };
        }
      }
      await writers.close();
      await rejects.close();
      const writeSeconds = Math.round((writeMs + performance.now() - writeStarted) / 10) / 100;
      const mainThreadBusy = performance.eventLoopUtilization(loopStarted).utilization;

      const rowsOut = (splits.train?.rows ?? 0) + (splits.test?.rows ?? 0);
      if (rowsOut + rejects.rows !== plan.rows) {
        throw new AccountingError(
          `Rows in (${plan.rows}) do not equal rows out (${rowsOut}) plus rows rejected (${rejects.rows}). ` +
            'This is a bug; the output was not written. Please report it with the command you ran.',
        );
      }
      const bytesOut = Object.values(splits).reduce(
        (total, report) => total + report.files.reduce((sum, file) => sum + file.size, 0),
        0,
      );
      const fraction = rejects.rows / plan.rows;
      await writeFile(
        path.join(staging, 'README.md'),
        datasetCard({
          splits: SPLITS.flatMap((name) => {
            const report = splits[name];
            return report === undefined ? [] : [{ name, rows: report.rows, numBytes: report.numBytes }];
          }),
          downloadSize: bytesOut,
          seed: options.seed,
          testSize: options.testSize,
          image: options.image,
          maxShardSize: options.maxShardSize,
          rowsIn: plan.rows,
          rowsRejected: rejects.rows,
        }),
      );
      const report: ConvertReport = {
        tool: { name: packageInfo.name, version: packageInfo.version },
        ok: fraction <= options.maxRejectFraction,
        input: {
          ...(source === null
            ? {}
            : {
                dataset: {
                  repo: source.repo,
                  revision: source.revision,
                  commit: source.commit,
                  filesDownloaded: source.files.filter((file) => !file.cached).length,
                },
              }),
          files: plan.files.map((file) => ({ path: file.path, rows: file.rows, bytes: file.size, rowGroups: file.rowGroups.length })),
          rows: plan.rows,
          bytes: plan.bytes,
        },
        output: { dir: output, rows: rowsOut, bytes: bytesOut, splits },
        rejected: { rows: rejects.rows, fraction, byCode: rejects.counts, file: rejects.file },
        images,
        seconds: {
          plan: planSeconds,
          convert: convertSeconds,
          read: Math.round(readMs / 10) / 100,
          images: Math.round(workerSeconds.images * 100) / 100,
          format: Math.round(workerSeconds.format * 100) / 100,
          write: writeSeconds,
          total: 0,
        },
        cpu: { mainThreadBusy: Math.round(mainThreadBusy * 1000) / 1000, mainThread: null, process: 0 },
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
        },
      };
      report.seconds.total = seconds(started);
      const mainThreadCpu = threadCpuSeconds();
      report.cpu.process = Math.round((processCpuSeconds() - cpuStarted.process) * 100) / 100;
      report.cpu.mainThread =
        mainThreadCpu === null || cpuStarted.mainThread === null ? null : Math.round((mainThreadCpu - cpuStarted.mainThread) * 100) / 100;
      const writer = writers.thread;
      const threads = threadsSummary(workerThreads, writer === null ? new Map() : new Map([[writer.id, writer.cpu]]));
      if (threads !== null) report.cpu.threads = threads;
      await writeFile(path.join(staging, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
      signal?.throwIfAborted();
      await publishOutput(staging, output);
      published = true;
      yield { type: 'done', report };
      return report;
    } finally {
      if (!published) {
        await rejects.abort().catch(() => undefined);
        await writers.abort().catch(() => undefined);
        await rm(staging, { recursive: true, force: true });
      }
    }
  } finally {
    planned?.downloads?.abort();
    await pool.destroy().catch(() => undefined);
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
  const events = convertIter(options);
  for (;;) {
    const step = await events.next();
    if (step.done === true) return step.value;
  }
}
