import { availableParallelism } from 'node:os';
import { hideBin } from 'yargs/helpers';
import { OptionError } from '../errors.js';
import { clearImageStore } from '../image/clear-image-store.js';
import { defaultStoreDir, imageStoreInfo } from '../image/image-store-dir.js';
import { formatBytes } from '../util/format.js';
import { makeSample, type SampleProfile } from '../source/make-sample.js';
import type { ImageMode } from '../image/image-policy.js';
import { verifyIter, type VerifyReport } from '../verify/verify.js';
import { interruptible, progressRenderer } from './process.js';
import { verifyProblems, verifySummary } from './render-verify.js';

/** The handlers of `verify`, `cache`, `sample` and `bench`: each command's work once yargs has read its options. */

/** What `verify` reads of its options (yargs' argv). */
export interface VerifyArgv {
  dir: string;
  numProc: number | undefined;
  quiet: boolean;
  json: boolean;
}

/** `verify <dir>`: the checks with their progress, then what holds, or each problem (exit 1). */
export async function verifyCommand(argv: VerifyArgv): Promise<void> {
  const renderer = progressRenderer(argv.quiet);
  let report: VerifyReport | undefined;
  for await (const event of verifyIter({ dir: argv.dir, ...(argv.numProc === undefined ? {} : { numProc: argv.numProc }), signal: interruptible().signal })) {
    renderer?.render(event);
    if (event.type === 'done') report = event.report;
  }
  if (report === undefined) return;
  if (argv.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (report.ok) {
    if (!argv.quiet) process.stderr.write(`${verifySummary(report)}\n`);
    return;
  }
  process.stderr.write(`${verifyProblems(report)}\n`);
  process.exitCode = 1;
}

/** `cache info|clear`: what the cache of image work holds, or that it was emptied. */
export async function cacheCommand(argv: { action: 'info' | 'clear'; json: boolean }): Promise<void> {
  const dir = defaultStoreDir();
  if (argv.action === 'clear') {
    await clearImageStore(dir);
    process.stderr.write(`Emptied the cache in ${dir}.\n`);
    return;
  }
  const info = await imageStoreInfo(dir);
  if (argv.json) process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
  else {
    process.stdout.write(
      `${info.dir}: ${formatBytes(info.bytes)}; ${info.verdicts.toLocaleString('en-US')} image(s) found whole and kept, ` +
        `${info.reencoded.toLocaleString('en-US')} re-encoded, ${info.rejected.toLocaleString('en-US')} rejected (over every image policy).\n`,
    );
  }
}

/** What `sample` reads of its options (yargs' argv). */
export interface SampleArgv {
  rows: number;
  output: string;
  seed: number;
  files: number;
  rowGroupSize: number | undefined;
  imageSide: number;
  profile: string;
  overwrite: boolean;
  quiet: boolean;
}

/** `sample`: a synthetic dataset written with its progress drawn, then what was written. */
export async function sampleCommand(argv: SampleArgv): Promise<void> {
  const renderer = progressRenderer(argv.quiet);
  const report = await makeSample({
    onProgress: (done, total) => renderer?.sample(done, total),
    rows: argv.rows,
    output: argv.output,
    seed: argv.seed,
    files: argv.files,
    rowGroupSize: argv.rowGroupSize,
    imageSide: argv.imageSide,
    profile: argv.profile as SampleProfile,
    overwrite: argv.overwrite,
    signal: interruptible().signal,
  });
  if (!argv.quiet) {
    process.stderr.write(
      `Wrote ${report.rows} rows (${report.distinctImages} distinct images, ${formatBytes(report.bytes)}) to ${report.files.join(', ')}\n`,
    );
  }
}

/** What `bench` reads of its options (yargs' argv). */
export interface BenchArgv {
  input: string | undefined;
  rows: number;
  numProc: string | undefined;
  writerBatchSize: string;
  repeats: number;
  images: string;
  quality: number | undefined;
  reference: boolean;
  quick: boolean;
  resultsDir: string | undefined;
}

/** A list flag of `bench` (`1,2,4`): positive integers separated by commas. */
function numberList(value: string | undefined, name: string): number[] | undefined {
  if (value === undefined) return undefined;
  const numbers = value.split(',').map(Number);
  if (numbers.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new OptionError(`--${name} takes positive integers separated by commas, got ${value}`);
  return numbers;
}

/** `bench`: the grid of worker counts and batch sizes run (a small one with --quick), then the best point. */
export async function benchCommand(argv: BenchArgv): Promise<void> {
  const { runBench } = await import('../bench/run-bench.js');
  const cores = availableParallelism();
  const quick = argv.quick;
  const { results, files } = await runBench({
    input: argv.input,
    rows: quick && argv.input === undefined ? 500 : argv.rows,
    numProcs: numberList(argv.numProc, 'num-proc') ?? (quick ? [...new Set([1, cores])] : undefined),
    batchSizes: quick ? [32, 128] : numberList(argv.writerBatchSize, 'writer-batch-size'),
    repeats: quick ? 1 : argv.repeats,
    images: argv.images as ImageMode,
    quality: argv.quality,
    reference: argv.reference,
    resultsDir: argv.resultsDir,
    command: `rlaif-v ${hideBin(process.argv).join(' ')}`,
  });
  process.stderr.write(
    `Best: --num-proc ${results.best.numProc} --writer-batch-size ${results.best.batchSize} at ${results.best.rowsPerSecond.toFixed(1)} rows/s.\nWrote ${files.join(', ')}\n`,
  );
}
