import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { convertIter } from '../run/convert.js';
import type { ConvertReport } from '../run/convert-report.js';
import { existsSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import path from 'node:path';
import { CHECKPOINT_FILE } from '../run/checkpoint.js';
import { stagingDir } from '../dirs/staging.js';
import { inRange, paths, text, wholeNumber } from './option-readers.js';
import { CHOICES, RANGES } from '../options/option-table.js';
import { numProcFlag, partOf, withConvertFlags, withPushFlags, type PushArgv } from './convert-flags.js';
import { partDir } from '../run/part-manifest.js';
import { finalizeIter } from '../run/finalize.js';
import { verifyIter, type VerifyReport } from '../verify/verify.js';
import { clearImageStore, defaultStoreDir, imageStoreInfo } from '../image/image-store-dir.js';
import { runSlurm, type SlurmArgv } from './slurm.js';
import { InputError, OptionError, RlaifError } from '../errors.js';
import { stat } from 'node:fs/promises';
import { makeSample, SAMPLE_DEFAULTS, type SampleProfile } from '../source/make-sample.js';
import { ProgressRenderer, summarize } from './render-progress.js';
import { formatBytes } from '../plan/inspect-input.js';
import { packageInfo } from '../util/package-info.js';
import type { ImageMode } from '../types.js';
import { hubSettings, type HubSettings } from '../hub/hub-settings.js';
import { checkPushAccess, DEFAULT_REPO_ID, pushIter, type PushReport } from '../hub/push-dataset.js';

/** Exit codes: 0 done, 1 failed (or too many rows rejected), 2 bad input or usage. */
const EXIT_USAGE = 2;

/**
 * `numProc` -> `--num-proc`: the library's option errors name the flag the user typed, not the library's option, and
 * say nothing of JavaScript types.
 */
function asFlags(message: string): string {
  const flag = (name: string): string => `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
  return message
    .replace(/^([a-z][A-Za-z]*) applies to ([a-z][A-Za-z]*)\b/, (_match, name: string, other: string) => `${flag(name)} applies to ${flag(other)}`)
    .replace(/\bfor ([a-z]+[A-Z]\w*|[a-z]+) but received/, (_match, name: string) => {
      return `for --${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} but received`;
    })
    .replace(/ of type \w+$/, '');
}

/** The staging directory of the conversion under way, if any: what an interrupted run may leave to be taken up. */
let convertStaging: string | null = null;

/**
 * A command's examples, each whole on a line of its own under what it does: yargs' own examples column cut commands
 * in the middle at any width. `$0` is the program's name.
 */
function examples(list: readonly (readonly [string, string])[]): string {
  return `Examples:\n${list.map(([command, what]) => `  ${what}:\n    ${command.replace(/\$0/g, 'rlaif-v')}`).join('\n')}`;
}

/** The progress line being drawn, if any: taken away before a message is written, so the message starts its own line. */
let activeRenderer: ProgressRenderer | null = null;

function progressRenderer(quiet: boolean): ProgressRenderer | null {
  activeRenderer?.close();
  activeRenderer = quiet ? null : new ProgressRenderer({ stream: process.stderr });
  return activeRenderer;
}

function fail(error: unknown): never {
  activeRenderer?.close();
  if (error instanceof RlaifError) {
    process.stderr.write(`rlaif-v: ${error.code === 'ERR_INVALID_OPTION' ? asFlags(error.message) : error.message}\n`);
    process.exit(error.exitCode);
  }
  if (error instanceof Error && error.name === 'AbortError') {
    const signal = stoppedBy ?? 'SIGINT';
    const stopped = signal === 'SIGINT' ? 'interrupted' : `stopped by ${signal}`;
    const kept = convertStaging !== null && existsSync(path.join(convertStaging, CHECKPOINT_FILE));
    process.stderr.write(
      kept
        ? `rlaif-v: ${stopped}. The work done up to the last checkpoint is kept in ${convertStaging}: run the same command ` +
            'again to take it up from there (--no-resume to start over).\n'
        : `rlaif-v: ${stopped}. Nothing half-written is left behind; ` +
            'run the same command again (downloads resume from the cache, a push where it stopped).\n',
    );
    // The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
    process.exit(128 + constants.signals[signal]);
  }
  process.stderr.write(`rlaif-v: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}

/** Uploads a dataset directory, drawing progress; resolves with the report. */
async function runPush(dir: string, repoId: string, isPrivate: boolean, settings: HubSettings, quiet: boolean, signal: AbortSignal): Promise<PushReport> {
  const renderer = progressRenderer(quiet);
  let report: PushReport | undefined;
  for await (const event of pushIter({ dir, repoId, private: isPrivate, settings, signal })) {
    renderer?.render(event);
    if (event.type === 'pushed') report = event.report;
  }
  if (report === undefined) throw new Error('the push ended without a report');
  if (!quiet) {
    process.stderr.write(
      `Pushed to ${report.url}: ${report.uploaded.length} shard(s) committed, ${report.skipped.length} already there` +
        `${report.deleted.length > 0 ? `, ${report.deleted.length} old shard(s) removed` : ''}; ${report.commits.length} commit(s).\n`,
    );
  }
  return report;
}

/** The signal that stopped the run, for its exit code. */
let stoppedBy: 'SIGINT' | 'SIGTERM' | 'SIGHUP' | null = null;

function interruptible(): AbortController {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      stoppedBy ??= signal;
      controller.abort();
    });
  }
  return controller;
}

async function runConvert(argv: PushArgv & {
  input: string[] | undefined;
  dataset: string | undefined;
  revision: string | undefined;
  output: string;
  numProc: number | undefined;
  writerBatchSize: number;
  testSize: number;
  seed: number;
  images: string;
  quality: number | undefined;
  maxSide: number | undefined;
  maxPixels: number;
  maxShardSize: string;
  maxRejectFraction: number;
  maxRowGroupBytes: string;
  maxBytesInFlight: string | undefined;
  imageTimeout: number;
  onBadImage: string;
  overwrite: boolean;
  resume: boolean;
  checkpointEvery: string;
  numShards: number | undefined;
  shardIndex: number | undefined;
  columns: string | undefined;
  cache: boolean;
  cacheSize: string;
}): Promise<void> {
  const part = partOf(argv);
  const controller = interruptible();
  convertStaging = 'numShards' in part ? partDir(path.resolve(argv.output), { index: part.shardIndex, count: part.numShards }) : stagingDir(path.resolve(argv.output));
  const local = argv.input !== undefined && argv.input.length > 0;
  // Local input without a push never touches the Hub, nor reads its token.
  const settings = local && !argv.pushToHub ? undefined : await hubSettings({ token: argv.token });
  // A push at the end needs a token the Hub accepts: find out now, not after hours of conversion.
  const renderer = progressRenderer(argv.quiet);
  if (argv.pushToHub && settings !== undefined) {
    await checkPushAccess(settings, argv.repoId, { signal: controller.signal, onRetry: (retry) => renderer?.render({ type: 'retry', retry }) });
  }
  let report: ConvertReport | undefined;
  for await (const event of convertIter({
    // --revision with --input is passed on, for the library to refuse: it would do nothing.
    ...(local ? { input: argv.input, ...(argv.revision === undefined ? {} : { revision: argv.revision }) } : { dataset: argv.dataset, revision: argv.revision }),
    ...(settings === undefined ? {} : { hub: settings }),
    output: argv.output,
    numProc: argv.numProc,
    writerBatchSize: argv.writerBatchSize,
    testSize: argv.testSize,
    seed: argv.seed,
    images: argv.images as ImageMode,
    ...(argv.quality === undefined ? {} : { quality: argv.quality }),
    maxSide: argv.maxSide ?? null,
    maxPixels: argv.maxPixels,
    maxShardSize: argv.maxShardSize,
    maxRejectFraction: argv.maxRejectFraction,
    maxRowGroupBytes: argv.maxRowGroupBytes,
    ...(argv.maxBytesInFlight === undefined ? {} : { maxBytesInFlight: argv.maxBytesInFlight }),
    imageTimeout: argv.imageTimeout,
    onBadImage: argv.onBadImage as 'skip' | 'fail',
    overwrite: argv.overwrite,
    resume: argv.resume,
    checkpointEvery: argv.checkpointEvery,
    ...(argv.columns === undefined ? {} : { columns: argv.columns }),
    cache: argv.cache,
    cacheSize: argv.cacheSize,
    ...part,
    signal: controller.signal,
  })) {
    renderer?.render(event);
    if (event.type === 'done') report = event.report;
  }
  if (report === undefined) return;
  await reportAndPush(report, argv, settings, controller.signal);
}

/** Prints a finished run's report, fails on too many rejected rows, and pushes when asked. */
async function reportAndPush(
  report: ConvertReport,
  argv: Omit<PushArgv, 'token'>,
  settings: HubSettings | undefined,
  signal: AbortSignal,
): Promise<void> {
  if (argv.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!argv.quiet) process.stderr.write(`${summarize(report)}\n`);
  // A part's rejected rows are judged with every other part's, by finalize.
  if (report.part !== undefined) return;
  if (!report.ok) {
    process.stderr.write(
      `rlaif-v: ${(report.rejected.fraction * 100).toFixed(2)}% of rows were rejected, over --max-reject-fraction ` +
        `${report.options.maxRejectFraction}. The output is complete without them; see ${report.rejected.file ?? 'rejects/'} for why.\n`,
    );
    process.exitCode = 1;
    if (argv.pushToHub) process.stderr.write('rlaif-v: not pushed, because of the rejected rows. Check them, then run `rlaif-v push` if the output is fine.\n');
    return;
  }
  if (argv.pushToHub && settings !== undefined) await runPush(report.output.dir, argv.repoId, argv.private, settings, argv.quiet, signal);
}

/** `finalize`: the parts of a multi-machine run put together, then pushed when asked. */
async function runFinalize(argv: PushArgv & {
  output: string;
  overwrite: boolean;
}): Promise<void> {
  const controller = interruptible();
  const settings = argv.pushToHub ? await hubSettings({ token: argv.token }) : undefined;
  const renderer = progressRenderer(argv.quiet);
  if (settings !== undefined) {
    await checkPushAccess(settings, argv.repoId, { signal: controller.signal, onRetry: (retry) => renderer?.render({ type: 'retry', retry }) });
  }
  let report: ConvertReport | undefined;
  for await (const event of finalizeIter({ output: argv.output, overwrite: argv.overwrite, signal: controller.signal })) {
    renderer?.render(event);
    if (event.type === 'done') report = event.report;
  }
  if (report !== undefined) await reportAndPush(report, argv, settings, controller.signal);
}

// A reader that goes away (`rlaif-v convert ... 2>&1 | head -1`) must not stop the work, which is the dataset on disk,
// not these lines: once a stream's pipe is closed, what would go to it is dropped and the run goes on to its end.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

// Started by bin.js with a lifeline: if that parent dies (even by SIGKILL), stop as if told to.
if (process.channel !== undefined) {
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

await yargs(hideBin(process.argv))
  // Values stay the text typed; option-readers.ts reads each strictly (yargs would read 0x10 as 16).
  .parserConfiguration({ 'parse-numbers': false })
  .scriptName('rlaif-v')
  .usage('$0 <command> [options]\n\nConvert openbmb/RLAIF-V-Dataset to the conversational format of TRL\'s DPO trainer.')
  .command(
    'convert',
    'Convert source parquet files to a dataset directory that datasets.load_dataset and TRL read',
    (y) =>
      withConvertFlags(y)
        .epilogue(examples([
          ['$0 convert --output rlaif-v', 'Download openbmb/RLAIF-V-Dataset into the Hugging Face cache and convert it'],
          ['$0 convert --output rlaif-v --push-to-hub --repo-id me/rlaif-v', 'The same, then push the result to the Hub'],
          ['$0 convert --input RLAIF-V-Dataset/ --output rlaif-v', 'Convert a local copy of the source'],
          ['$0 convert -i sample -o out --num-proc 2 --seed 7 --test-size 0.05', 'A 5% test split with another seed'],
        ])),
    async (argv) => {
      await runConvert(argv as unknown as Parameters<typeof runConvert>[0]);
    },
  )
  .command(
    'finalize <output>',
    'Put the parts of a run over several machines (convert --num-shards) together into the output, then push if asked',
    (y) =>
      withPushFlags(y)
        .positional('output', { type: 'string', demandOption: true, describe: 'The --output the parts were converted for' })
        .option('overwrite', { type: 'boolean', default: false, describe: 'Replace an existing output of this tool (never a directory of other files)' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress or summary on stderr' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON on stdout' })
        .epilogue(examples([
          ['$0 finalize rlaif-v', 'After every part of convert -o rlaif-v --num-shards K is done'],
          ['$0 finalize rlaif-v --push-to-hub --repo-id me/rlaif-v', 'The same, then push the result to the Hub'],
        ])),
    async (argv) => {
      await runFinalize(argv as unknown as Parameters<typeof runFinalize>[0]);
    },
  )
  .command(
    'slurm',
    'Convert on a Slurm cluster: an array job of --tasks parts, then finalize when they all succeed',
    (y) =>
      withConvertFlags(y)
        // Checked against the nodes' cores by each part, not against this machine's.
        .option('num-proc', { requiresArg: true, coerce: wholeNumber('--num-proc', 1, 100_000), describe: 'Worker threads of each part (default: --cpus-per-task, else the node\'s cores)' })
        // Set for each part by the array job itself.
        .hide('num-shards')
        .hide('shard-index')
        .option('json', { type: 'boolean', default: false, describe: 'Print the job ids, scripts and logs as JSON on stdout' })
        .option('tasks', { requiresArg: true, demandOption: true, coerce: inRange('--tasks', RANGES.numShards), describe: 'Parts, one array task each (the array is 0 to tasks less one)' })
        .option('partition', { requiresArg: true, coerce: text('--partition'), describe: 'Slurm partition of both jobs (default: the cluster\'s)' })
        .option('time', { requiresArg: true, coerce: text('--time'), describe: 'Time limit of each task and of finalize, as sbatch takes it (1:00:00)' })
        .option('cpus-per-task', { requiresArg: true, coerce: wholeNumber('--cpus-per-task', 1, 100_000), describe: 'CPUs of each task; also its --num-proc unless given' })
        .option('sbatch-arg', { type: 'string', array: true, requiresArg: true, coerce: paths('--sbatch-arg'), describe: 'More sbatch options for both jobs, each as --sbatch-arg=--mem=16G' })
        .option('log-dir', { requiresArg: true, coerce: text('--log-dir'), describe: 'Where the batch scripts and logs go (default <output>.slurm)' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'Print the two batch scripts instead of submitting them' })
        .epilogue(examples([
          ['$0 slurm -o /shared/rlaif-v --tasks 16 --cpus-per-task 8 --time 1:00:00', 'Download and convert RLAIF-V in 16 parts'],
          ['$0 slurm -i /shared/RLAIF-V-Dataset -o /shared/rlaif-v --tasks 4 --dry-run', 'Show the batch scripts'],
        ])),
    async (argv) => {
      await runSlurm(argv as unknown as SlurmArgv, hideBin(process.argv), () => interruptible().signal);
    },
  )
  .command(
    'verify <dir>',
    'Read an output back as a consumer would: shards, schema, card, rows against report.json, and every image',
    (y) =>
      y
        .positional('dir', { type: 'string', demandOption: true, describe: 'A dataset directory written by convert or finalize' })
        .option('num-proc', { requiresArg: true, coerce: numProcFlag, describe: 'Worker threads that decode the images (default: the available cores)' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress on stderr' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the findings as JSON on stdout' })
        .epilogue(examples([
          ['$0 verify rlaif-v', 'Exit 0 when all holds, 1 naming each problem and where'],
        ])),
    async (argv) => {
      const renderer = progressRenderer(argv.quiet);
      let report: VerifyReport | undefined;
      for await (const event of verifyIter({ dir: argv.dir, ...(argv.numProc === undefined ? {} : { numProc: argv.numProc }), signal: interruptible().signal })) {
        renderer?.render(event);
        if (event.type === 'done') report = event.report;
      }
      if (report === undefined) return;
      if (argv.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      const splits = Object.entries(report.splits)
        .map(([name, split]) => `${split.rows.toLocaleString('en-US')} ${name} rows in ${split.files} shard(s)`)
        .join(', ');
      if (report.ok) {
        if (!argv.quiet) process.stderr.write(`${report.dir}: all holds. ${splits}; ${report.images.checked.toLocaleString('en-US')} images decode.${report.notes.map((note) => ` (${note})`).join('')}\n`);
        return;
      }
      process.stderr.write(
        `rlaif-v: ${report.dir} has ${report.problems.length} problem(s):\n${report.problems.map((problem) => `  ${problem.code}: ${problem.message}`).join('\n')}\n`,
      );
      process.exitCode = 1;
    },
  )
  .command(
    'cache <action>',
    'The cache of image work that makes re-runs cheap: info (where it is, what it holds) or clear',
    (y) =>
      y
        .positional('action', { choices: ['info', 'clear'] as const, demandOption: true, describe: 'info or clear' })
        .option('json', { type: 'boolean', default: false, describe: 'Print what it holds as JSON on stdout (info)' })
        .epilogue(examples([
          ['$0 cache info', 'Where the cache is, its size and entries'],
          ['RLAIF_V_CACHE=/scratch/rlaif-v-cache $0 cache clear', 'Empty a cache elsewhere'],
        ])),
    async (argv) => {
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
    },
  )
  .command(
    'push <dir>',
    'Push a converted dataset directory to a dataset repo on the Hub (resumes an interrupted push)',
    (y) =>
      y
        .positional('dir', { type: 'string', demandOption: true, describe: 'An output directory of convert' })
        .option('repo-id', { requiresArg: true, default: DEFAULT_REPO_ID, coerce: text('--repo-id'), describe: 'Dataset repo to push to (created if missing)' })
        .option('private', { type: 'boolean', default: false, describe: 'Create the repo private, if it does not exist' })
        .option('token', { requiresArg: true, coerce: text('--token'), describe: 'Hugging Face token (default: HF_TOKEN, else the token file of hf auth login)' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress on stderr' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the push report as JSON on stdout' })
        .epilogue(examples([
          ['$0 push rlaif-v --repo-id me/rlaif-v', 'Upload data/*.parquet, then README.md'],
        ])),
    async (argv) => {
      if ((await stat(argv.dir).catch(() => null))?.isDirectory() !== true) {
        throw new InputError('ERR_INPUT_MISSING', `${argv.dir}: no such directory. Give the output directory of rlaif-v convert (or finalize).`, { file: argv.dir });
      }
      const settings = await hubSettings({ token: argv.token });
      const report = await runPush(argv.dir, argv.repoId, argv.private, settings, argv.quiet, interruptible().signal);
      if (argv.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    },
  )
  .command(
    'sample',
    'Write a synthetic dataset with the exact source schema (for demos, tests and benchmarks)',
    (y) =>
      y
        .option('rows', { requiresArg: true, demandOption: true, coerce: wholeNumber('--rows', 1), describe: 'Rows in all' })
        .option('output', { alias: 'o', requiresArg: true, demandOption: true, coerce: text('--output'), describe: 'Directory for RLAIF-V-Dataset_NNN.parquet files' })
        .option('seed', { requiresArg: true, default: SAMPLE_DEFAULTS.seed, coerce: wholeNumber('--seed', 0), describe: 'The same seed gives the same bytes' })
        .option('files', { requiresArg: true, default: SAMPLE_DEFAULTS.files, coerce: wholeNumber('--files', 1), describe: 'Files to spread the rows over' })
        .option('row-group-size', { requiresArg: true, coerce: wholeNumber('--row-group-size', 1), describe: 'Rows per row group (default: one row group per file, like the source)' })
        .option('image-side', { requiresArg: true, default: SAMPLE_DEFAULTS.imageSide, coerce: wholeNumber('--image-side', 8), describe: 'Longest side of the generated images, in pixels (8 or more)' })
        .option('profile', {
          requiresArg: true,
          choices: ['varied', 'source'],
          default: SAMPLE_DEFAULTS.profile,
          coerce: text('--profile'),
          describe: 'varied: every kind of image in even measure; source: shaped like RLAIF-V (90% JPEG photos of ~73 KB, 10% PNG of ~0.9 MB, ~155 KB a row)',
        })
        .option('overwrite', { type: 'boolean', default: false, describe: 'Replace existing sample files' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No summary on stderr' }),
    async (argv) => {
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
    },
  )
  .command(
    'bench',
    'Benchmark worker counts and batch sizes (and, with --reference, the Python reference) on one input',
    (y) =>
      y
        .option('input', { alias: 'i', requiresArg: true, coerce: text('--input'), describe: 'Input to convert (default: a generated sample of --rows rows)' })
        .option('rows', { requiresArg: true, default: 2000, coerce: wholeNumber('--rows', 1), describe: 'Rows of the generated sample' })
        .option('num-proc', { requiresArg: true, coerce: text('--num-proc'), describe: 'Worker counts to try, comma-separated (default: 1 … the cores)' })
        .option('writer-batch-size', { requiresArg: true, coerce: text('--writer-batch-size'), default: '16,32,64,128,256', describe: 'Batch sizes to try, comma-separated' })
        .option('repeats', { requiresArg: true, default: 3, coerce: wholeNumber('--repeats', 1), describe: 'Runs per point' })
        .option('images', { requiresArg: true, choices: CHOICES.images, default: 'keep', coerce: text('--images'), describe: 'The image mode of every run' })
        .option('quality', { requiresArg: true, coerce: inRange('--quality', RANGES.quality), describe: `Quality for --images jpeg|webp, ${RANGES.quality.min} to ${RANGES.quality.max} (default 75)` })
        .option('reference', { type: 'boolean', default: false, describe: 'Also run the Python reference and --images jpeg --quality 75' })
        .option('quick', { type: 'boolean', default: false, describe: 'A small grid: 500 rows, 1 and all cores, batch 32 and 128, one run each' })
        .option('results-dir', { requiresArg: true, coerce: text('--results-dir'), describe: 'Where to write <timestamp>.json, .md and .svg (default bench/results)' }),
    async (argv) => {
      const { runBench } = await import('../../bench/run-bench.js');
      const list = (value: string | undefined, name: string): number[] | undefined => {
        if (value === undefined) return undefined;
        const numbers = value.split(',').map(Number);
        if (numbers.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new OptionError(`--${name} takes positive integers separated by commas, got ${value}`);
        return numbers;
      };
      const cores = availableParallelism();
      const quick = argv.quick;
      const { results, files } = await runBench({
        input: argv.input,
        rows: quick && argv.input === undefined ? 500 : argv.rows,
        numProcs: list(argv.numProc, 'num-proc') ?? (quick ? [...new Set([1, cores])] : undefined),
        batchSizes: quick ? [32, 128] : list(argv.writerBatchSize, 'writer-batch-size'),
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
    },
  )
  .demandCommand(1, 'Name a command: convert, finalize, slurm, verify, cache, push, sample or bench.')
  .strict()
  .version(packageInfo.version)
  .help()
  .alias('h', 'help')
  .wrap(Math.min(110, process.stdout.columns ?? 110))
  .fail((message: string, error: Error | undefined) => {
    // An option's reader threw (yargs wraps what a coerce throws): a usage error like any other.
    if (error?.name === 'YError') message = error.message;
    else if (error !== undefined && error !== null) fail(error);
    message = message.replace(/^Not enough arguments following: (\S+)$/, (_match, flag: string) => `--${flag} needs a value`);
    process.stderr.write(`rlaif-v: ${message}\nRun 'rlaif-v --help' for usage.\n`);
    process.exit(EXIT_USAGE);
  })
  .parseAsync();
