import { hostname } from 'node:os';
import type { ConvertReport, SplitName, SplitReport } from './convert-report.js';
import type { Run } from './run.js';
import { processCpuSeconds, threadCpuSeconds, threadsSummary } from '../util/measure-cpu.js';
import { packageInfo } from '../util/package-info.js';
import { LOGICAL_COLUMNS } from '../source/source-layout.js';

/** Seconds since `since` (a performance.now()), to two decimals. */
export function seconds(since: number): number {
  return Math.round((performance.now() - since) / 10) / 100;
}

/** Seconds and CPU a run took, measured as it goes (see convertIter and convertAndWrite in convert.ts). */
export interface RunTimes {
  started: number;
  cpuStarted: { process: number; mainThread: number | null };
  planSeconds: number;
  convertSeconds: number;
  writeSeconds: number;
  mainThreadBusy: number;
}

/** The report of a run (a whole run's, or a part's): what it read, wrote and rejected, how long it took, its options. */
export function runReport(run: Run, splits: Partial<Record<SplitName, SplitReport>>, bytesOut: number, times: RunTimes): ConvertReport {
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
