/**
 * `rlaif-v bench`: converts one input over a grid of worker counts × batch sizes, each point repeated, in child
 * processes (so each has its own peak memory), and measures the single-core limit and, when asked, the Python
 * reference on the same input. Writes bench/results/<timestamp>.json, .md and .svg.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { makeSample } from '../source/make-sample.js';
import type { ImageMode } from '../image/image-policy.js';
import { BENCH_DIR, BENCH_PYTHON, SINGLE_CORE_LIMIT } from '../util/paths.js';
import { measureNode, measureProcess } from './measure-process.js';
import { pythonWithDatasets } from './python-env.js';
import { renderMarkdown, renderSvg } from './render-results.js';
import { measurePlain, measureReference } from './python-peers.js';
import { measureGrid, measureJpegMode, type GridSettings } from './measure-grid.js';
import type { BenchResults, ImageKindCost, Log, ModeRun, PlainRun } from './bench-results.js';

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

async function inputBytes(input: string): Promise<{ bytes: number; files: number }> {
  const info = await stat(input);
  if (!info.isDirectory()) return { bytes: info.size, files: 1 };
  const names = (await readdir(input, { recursive: true })).filter((name) => name.endsWith('.parquet'));
  let bytes = 0;
  for (const name of names) bytes += (await stat(path.join(input, name))).size;
  return { bytes, files: names.length };
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
