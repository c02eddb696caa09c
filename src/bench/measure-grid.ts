/**
 * The conversions `rlaif-v bench` times: each point of its grid of worker counts × batch sizes, repeated, and this tool
 * with `--images jpeg` at the best point; every run a child process, as a user's first run is by default.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ConvertReport } from '../run/convert-report.js';
import type { ImageMode } from '../image/image-policy.js';
import { BIN_PATH } from '../util/paths.js';
import { measureNode } from './measure-process.js';
import type { BenchPoint, BenchResults, BenchRun, Log, ModeRun, Spread } from './bench-results.js';

const CLI = BIN_PATH;

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { median, min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0 };
}


/**
 * One conversion, as a user's first run is by default: with the cache of image work on and empty (a new one each run,
 * so it fills it and finds nothing in it).
 */
async function convertOnce(input: string, output: string, args: string[]): Promise<BenchRun> {
  const cache = await mkdtemp(path.join(tmpdir(), 'rlaif-v-bench-cache-'));
  // MALLOC_ARENA_MAX set here keeps bin.js from relaunching itself, so the process measured is the one that works,
  // in the configuration bin.js gives every run.
  const run = await measureNode([CLI, 'convert', '--input', input, '--output', output, '--overwrite', '--quiet', '--json', '--max-reject-fraction', '1', ...args], {
    MALLOC_ARENA_MAX: '2',
    RLAIF_V_CACHE: cache,
  }).finally(() => rm(cache, { recursive: true, force: true }));
  await rm(output, { recursive: true, force: true });
  if (run.code !== 0) throw new Error(`convert ${args.join(' ')} exited with ${run.code}: ${run.stderr}`);
  const report = JSON.parse(run.stdout) as ConvertReport;
  return { seconds: run.seconds, rowsPerSecond: report.input.rows / run.seconds, peakRssMB: run.peakRss / 1e6, report };
}

/** CPU a row and single-thread ceilings from a run's report (see {@link BenchPoint.cpuMsPerRow}). */
function threadFigures(report: ConvertReport): Pick<BenchPoint, 'cpuMsPerRow' | 'ceilings'> {
  const threads = report.cpu.threads;
  const rows = report.input.rows;
  if (threads === undefined || rows === 0) return { cpuMsPerRow: null, ceilings: null };
  const ms = (seconds: number): number => Math.round(((seconds * 1000) / rows) * 1000) / 1000;
  const converting = report.cpu.mainThread ?? threads.main;
  const ceiling = (seconds: number): number => (seconds > 0 ? Math.round(rows / seconds) : Infinity);
  return {
    cpuMsPerRow: { process: ms(threads.process), main: ms(converting), mainStartup: Math.round((threads.main - converting) * 100) / 100, busiestOther: ms(threads.busiestOther) },
    ceilings: { main: ceiling(converting), busiestOther: ceiling(threads.busiestOther) },
  };
}


/** What a grid point is measured with. */
export interface GridSettings {
  input: string;
  output: string;
  bytes: number;
  images: ImageMode;
  quality: number;
  repeats: number;
  limit: BenchResults['limit'];
}

/** One point of the grid: its runs, and the figures of its median run. */
async function measurePoint(settings: GridSettings, numProc: number, batchSize: number, onRun: (run: BenchRun, repeat: number) => void): Promise<BenchPoint | null> {
  const { input, output, bytes, images, quality, repeats, limit } = settings;
  const runs: BenchRun[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    // --quality only where the mode encodes with one: convert refuses it with keep or png.
    const encoding = images === 'jpeg' || images === 'webp' ? ['--quality', String(quality)] : [];
    const run = await convertOnce(input, output, ['--num-proc', String(numProc), '--writer-batch-size', String(batchSize), '--images', images, ...encoding]);
    runs.push(run);
    onRun(run, repeat);
  }
  const rates = spread(runs.map((run) => run.rowsPerSecond));
  const median = [...runs].sort((a, b) => a.rowsPerSecond - b.rowsPerSecond)[runs.length >> 1] ?? runs[0];
  if (median === undefined) return null;
  const cpu = median.report.cpu;
  return {
    numProc,
    batchSize,
    rowsPerSecond: rates,
    mbPerSecond: spread(runs.map((run) => bytes / 1e6 / run.seconds)),
    peakRssMB: spread(runs.map((run) => run.peakRssMB)),
    mainThreadBusy: spread(runs.map((run) => run.report.cpu.mainThreadBusy)).median,
    cpuPerWorker: (cpu.process - (cpu.mainThread ?? 0)) / numProc,
    stages: {
      read: median.report.seconds.read,
      images: median.report.seconds.images,
      format: median.report.seconds.format,
      write: median.report.seconds.write,
    },
    efficiency: rates.median / (numProc * (limit.pillow ?? limit.imagesPerSecond)),
    ...threadFigures(median.report),
    runs: runs.map((run) => ({ seconds: run.seconds, rowsPerSecond: run.rowsPerSecond, peakRssMB: run.peakRssMB })),
  };
}

/** Every point of the grid of worker counts × batch sizes, and the input's rows. */
export async function measureGrid(settings: GridSettings, numProcs: number[], batchSizes: number[], log: Log): Promise<{ points: BenchPoint[]; inputRows: number }> {
  const points: BenchPoint[] = [];
  let inputRows = 0;
  const total = numProcs.length * batchSizes.length * settings.repeats;
  let done = 0;
  for (const numProc of numProcs) {
    for (const batchSize of batchSizes) {
      const point = await measurePoint(settings, numProc, batchSize, (run, repeat) => {
        inputRows = run.report.input.rows;
        done++;
        log(`[${done}/${total}] --num-proc ${numProc} --writer-batch-size ${batchSize}, run ${repeat + 1}: ${run.rowsPerSecond.toFixed(1)} rows/s, peak ${Math.round(run.peakRssMB)} MB`);
      });
      if (point !== null) points.push(point);
    }
  }
  return { points, inputRows };
}

/** This tool at the best point with `--images jpeg --quality 75`, the reference script's own work. */
export async function measureJpegMode(settings: GridSettings, best: BenchResults['best'], log: Log, maxSide?: number): Promise<ModeRun> {
  const jpegRuns: number[] = [];
  const shrink = maxSide === undefined ? [] : ['--max-side', String(maxSide)];
  for (let repeat = 0; repeat < settings.repeats; repeat++) {
    const run = await convertOnce(settings.input, settings.output, ['--num-proc', String(best.numProc), '--writer-batch-size', String(best.batchSize), '--images', 'jpeg', '--quality', '75', ...shrink]);
    jpegRuns.push(run.rowsPerSecond);
    log(`[jpeg q75${maxSide === undefined ? '' : ` max-side ${maxSide}`}] --num-proc ${best.numProc} --writer-batch-size ${best.batchSize}, run ${repeat + 1}: ${run.rowsPerSecond.toFixed(1)} rows/s`);
  }
  return { images: 'jpeg', quality: 75, ...(maxSide === undefined ? {} : { maxSide }), numProc: best.numProc, batchSize: best.batchSize, rowsPerSecond: spread(jpegRuns).median };
}
