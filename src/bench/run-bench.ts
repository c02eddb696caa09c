/**
 * `rlaif-v bench`: converts one input over a grid of worker counts × batch sizes, each point repeated, in child
 * processes (so each has its own peak memory), and measures the single-core limit and, when asked, the Python
 * reference on the same input. Writes bench/results/<timestamp>.json, .md and .svg.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { ConvertReport } from '../run/convert-report.js';
import { makeSample } from '../source/make-sample.js';
import type { ImageMode } from '../image/image-policy.js';
import { BENCH_DIR, BENCH_PYTHON, BIN_PATH, SINGLE_CORE_LIMIT } from '../util/paths.js';
import { measureNode, measureProcess } from './measure-process.js';
import { pythonWithDatasets } from './python-env.js';
import { renderMarkdown, renderSvg } from './render-results.js';
import { measurePlain, measureReference } from './python-peers.js';
import type { BenchPoint, BenchResults, BenchRun, ImageKindCost, Log, ModeRun, PlainRun, Spread } from './bench-results.js';

const CLI = BIN_PATH;
const LIMIT = SINGLE_CORE_LIMIT;
const { limit: PYTHON_LIMIT } = BENCH_PYTHON;

export interface BenchOptions {
  /** Input files or directory; default: a generated sample of `rows` rows, cached under bench/.cache. */
  input?: string;
  rows?: number;
  numProcs?: number[];
  batchSizes?: number[];
  repeats?: number;
  images?: ImageMode;
  quality?: number;
  /** Also run the Python reference, and this tool with `--images jpeg --quality 75` (the reference's own work). */
  reference?: boolean;
  resultsDir?: string;
  /** The command line, recorded in the results. */
  command?: string;
  log?: (line: string) => void;
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { median, min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0 };
}

async function inputBytes(input: string): Promise<{ bytes: number; files: number }> {
  const info = await stat(input);
  if (!info.isDirectory()) return { bytes: info.size, files: 1 };
  const names = (await readdir(input, { recursive: true })).filter((name) => name.endsWith('.parquet'));
  let bytes = 0;
  for (const name of names) bytes += (await stat(path.join(input, name))).size;
  return { bytes, files: names.length };
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


/** The `--max-side` of the shrinking mode the bench measures beside the others (and the plain script with it). */
const SHRINK_SIDE = 640;
type PythonFound = Awaited<ReturnType<typeof pythonWithDatasets>>;

/** The input to measure: the one given, or a generated sample of `rows` rows, made once under bench/.cache. */
async function benchInput(options: BenchOptions, cache: string, rows: number, log: Log): Promise<{ input: string; generated: boolean }> {
  if (options.input !== undefined) return { input: options.input, generated: false };
  // Shaped like the source (see SampleProfile 'source'): 90% JPEG photos of every kind, 10% large PNGs, about 155 KB a
  // row, in 4 files; no image repeated, so in-run sharing skips no work (the source repeats some: this is the harder case).
  const input = path.join(cache, `source-sample-${rows}`);
  if ((await readdir(input).catch(() => [])).length === 0) {
    log(`Generating a ${rows}-row RLAIF-V-shaped sample in ${input}...`);
    await makeSample({ rows, output: input, files: rows >= 1000 ? 4 : 1, profile: 'source', repeatFraction: 0 });
  }
  return { input, generated: true };
}

/** The single-core limit: this tool's check in a bare loop, and Pillow's (bench/limit.py) where Python is there. */
async function measureLimit(input: string, images: ImageMode, quality: number, log: Log): Promise<{ limit: BenchResults['limit']; python: PythonFound }> {
  log('Measuring the single-core limit...');
  const limitRun = await measureNode([LIMIT, input, images, String(quality)]);
  if (limitRun.code !== 0) throw new Error(`the single-core limit loop failed: ${limitRun.stderr}`);
  const python = await pythonWithDatasets();
  let pillow: number | null = null;
  if ('skip' in python) log(`No Pillow limit: ${python.skip}`);
  else {
    const run = await measureProcess(python.python, [PYTHON_LIMIT, '--input', input]);
    if (run.code !== 0) throw new Error(`bench/limit.py failed: ${run.stderr.slice(-2000)}`);
    pillow = (JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as { imagesPerSecond: number }).imagesPerSecond;
  }
  const measured = JSON.parse(limitRun.stdout) as { imagesPerSecond: number; kinds: ImageKindCost[] };
  const limit = { images, imagesPerSecond: measured.imagesPerSecond, pillow, kinds: measured.kinds };
  log(`  ${limit.imagesPerSecond} images/s on one core${pillow === null ? '' : ` (Pillow at libjpeg-turbo speed: ${pillow})`}`);
  return { limit, python };
}

/** What a grid point is measured with. */
interface GridSettings {
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
async function measureGrid(settings: GridSettings, numProcs: number[], batchSizes: number[], log: Log): Promise<{ points: BenchPoint[]; inputRows: number }> {
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
async function measureJpegMode(settings: GridSettings, best: BenchResults['best'], log: Log, maxSide?: number): Promise<ModeRun> {
  const jpegRuns: number[] = [];
  const shrink = maxSide === undefined ? [] : ['--max-side', String(maxSide)];
  for (let repeat = 0; repeat < settings.repeats; repeat++) {
    const run = await convertOnce(settings.input, settings.output, ['--num-proc', String(best.numProc), '--writer-batch-size', String(best.batchSize), '--images', 'jpeg', '--quality', '75', ...shrink]);
    jpegRuns.push(run.rowsPerSecond);
    log(`[jpeg q75${maxSide === undefined ? '' : ` max-side ${maxSide}`}] --num-proc ${best.numProc} --writer-batch-size ${best.batchSize}, run ${repeat + 1}: ${run.rowsPerSecond.toFixed(1)} rows/s`);
  }
  return { images: 'jpeg', quality: 75, ...(maxSide === undefined ? {} : { maxSide }), numProc: best.numProc, batchSize: best.batchSize, rowsPerSecond: spread(jpegRuns).median };
}

/** The machine the bench ran on. */
function machine(cores: number): BenchResults['machine'] {
  const versions = sharp.versions as { sharp?: string; vips: string };
  return {
    cores,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGB: Math.round(totalmem() / 2 ** 30),
    node: process.versions.node,
    sharp: versions.sharp ?? 'unknown',
    libvips: versions.vips,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Writes the results as <timestamp>.json, .md and .svg in `resultsDir`; the files written. */
async function writeResults(results: BenchResults, resultsDir: string): Promise<string[]> {
  await mkdir(resultsDir, { recursive: true });
  const stamp = results.date.replace(/[:.]/g, '-');
  const written = [path.join(resultsDir, `${stamp}.json`), path.join(resultsDir, `${stamp}.md`), path.join(resultsDir, `${stamp}.svg`)];
  await writeFile(written[0] ?? '', `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(written[1] ?? '', renderMarkdown(results));
  await writeFile(written[2] ?? '', renderSvg(results));
  return written;
}

/** Runs the grid (and, if asked, the reference) and writes the results; resolves with them and the files written. */
export async function runBench(options: BenchOptions = {}): Promise<{ results: BenchResults; files: string[] }> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const cores = availableParallelism();
  const rows = options.rows ?? 2000;
  const numProcs = options.numProcs ?? Array.from({ length: cores }, (_, index) => index + 1);
  const batchSizes = options.batchSizes ?? [16, 32, 64, 128, 256];
  const repeats = options.repeats ?? 3;
  const images = options.images ?? 'keep';
  const quality = options.quality ?? (images === 'keep' ? 90 : 75);
  const cache = path.join(BENCH_DIR, '.cache');
  await mkdir(cache, { recursive: true });

  const { input, generated } = await benchInput(options, cache, rows, log);
  const { bytes, files } = await inputBytes(input);
  // Every output of the runs goes into a folder made for this bench run (a new name), removed with all in it at the end.
  const work = await mkdtemp(path.join(cache, 'run-'));
  try {
    return await measureAndWrite({ options, log, cores, numProcs, batchSizes, repeats, images, quality, input, generated, bytes, files, work });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** What runBench settled before measuring: its options, the input, and the folder the runs write in. */
interface BenchPlan {
  options: BenchOptions;
  log: Log;
  cores: number;
  numProcs: number[];
  batchSizes: number[];
  repeats: number;
  images: ImageMode;
  quality: number;
  input: string;
  generated: boolean;
  bytes: number;
  files: number;
  work: string;
}

/** Measures the limit, the grid and (if asked) the other modes and the Python peers; writes the results. */
async function measureAndWrite(plan: BenchPlan): Promise<{ results: BenchResults; files: string[] }> {
  const { options, log, cores, numProcs, batchSizes, repeats, images, quality, input, generated, bytes, files, work } = plan;
  const { limit, python } = await measureLimit(input, images, quality, log);
  const settings: GridSettings = { input, output: path.join(work, 'output'), bytes, images, quality, repeats, limit };
  const { points, inputRows } = await measureGrid(settings, numProcs, batchSizes, log);

  const bestPoint = points.reduce((best, point) => (point.rowsPerSecond.median > best.rowsPerSecond.median ? point : best));
  const best = { numProc: bestPoint.numProc, batchSize: bestPoint.batchSize, rowsPerSecond: bestPoint.rowsPerSecond.median, efficiency: bestPoint.efficiency };
  const bestFigures = { cpuMsPerRow: bestPoint.cpuMsPerRow, ceilings: bestPoint.ceilings };
  const maxProc = Math.max(...numProcs);
  const rateAt = (numProc: number): number => points.find((point) => point.numProc === numProc && point.batchSize === best.batchSize)?.rowsPerSecond.median ?? 0;
  const scaling = { numProc: maxProc, batchSize: best.batchSize, ratio: rateAt(1) > 0 ? rateAt(maxProc) / rateAt(1) : 0 };

  const modes: ModeRun[] = [{ images, quality, numProc: best.numProc, batchSize: best.batchSize, rowsPerSecond: best.rowsPerSecond }];
  let reference: BenchResults['reference'] = null;
  let plain: PlainRun[] | null = null;
  if (options.reference === true) {
    if (images !== 'jpeg') modes.push(await measureJpegMode(settings, best, log));
    modes.push(await measureJpegMode(settings, best, log, SHRINK_SIDE));
    if ('skip' in python) log(`Skipping the Python reference: ${python.skip}`);
    else {
      reference = await measureReference(python.python, input, work, cores, log);
      plain = await measurePlain(python.python, input, work, cores, repeats, log, SHRINK_SIDE);
    }
  }

  const results: BenchResults = {
    date: new Date().toISOString(),
    command: options.command ?? 'rlaif-v bench',
    machine: machine(cores),
    input: { path: input, rows: inputRows, bytes, files, generated },
    options: { images, quality, repeats, numProcs, batchSizes },
    limit,
    points,
    best,
    scaling,
    modes,
    reference,
    plain,
    bestFigures,
  };
  return { results, files: await writeResults(results, options.resultsDir ?? path.join(BENCH_DIR, 'results')) };
}
