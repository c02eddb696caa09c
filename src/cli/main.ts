import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { SAMPLE_DEFAULTS } from '../source/make-sample.js';
import { packageInfo } from '../util/package-info.js';
import { DEFAULT_REPO_ID } from '../hub/push-dataset.js';
import { CHOICES, RANGES } from '../options/option-table.js';
import { inRange, paths, text, wholeNumber } from './option-readers.js';
import { numProcFlag, withConvertFlags, withPushFlags } from './convert-flags.js';
import { failUsage, interruptible, watchProcess } from './process.js';
import { runConvert, runFinalize } from './run-convert.js';
import { pushCommand } from './run-push.js';
import { benchCommand, cacheCommand, sampleCommand, verifyCommand } from './commands.js';
import { runSlurm } from './slurm.js';

/**
 * The `rlaif-v` command line: the table of its commands and their options, read by yargs. Each command's work is in
 * the module named beside it; the process around them (signals, streams, exit codes) in process.ts.
 */

/**
 * A command's examples, each whole on a line of its own under what it does: yargs' own examples column cut commands
 * in the middle at any width. `$0` is the program's name.
 */
function examples(list: readonly (readonly [string, string])[]): string {
  return `Examples:\n${list.map(([command, what]) => `  ${what}:\n    ${command.replace(/\$0/g, 'rlaif-v')}`).join('\n')}`;
}

watchProcess();

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
      await runConvert(argv);
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
      await runFinalize(argv);
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
      await runSlurm(argv, hideBin(process.argv), () => interruptible().signal);
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
      await verifyCommand(argv);
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
      await cacheCommand(argv);
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
      await pushCommand(argv);
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
      await sampleCommand(argv);
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
      await benchCommand(argv);
    },
  )
  .demandCommand(1, 'Name a command: convert, finalize, slurm, verify, cache, push, sample or bench.')
  .strict()
  .version(packageInfo.version)
  .help()
  .alias('h', 'help')
  .wrap(Math.min(110, process.stdout.columns ?? 110))
  .fail(failUsage)
  .parseAsync();
