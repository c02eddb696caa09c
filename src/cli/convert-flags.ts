import type { Argv } from 'yargs';
import { CHOICES, DEFAULTS, MAX_WORKERS_PER_CORE, RANGES } from '../options/option-table.js';
import { inRange, paths, testSize, text } from './option-readers.js';
import { OptionError } from '../errors.js';
import { DEFAULT_REPO_ID } from '../hub/push-dataset.js';

/** `--num-proc`, from 1 to MAX_WORKERS_PER_CORE × this machine's cores. */
export const numProcFlag = inRange('--num-proc', RANGES.numProc);

/** What {@link withPushFlags} adds to argv, with the `--quiet` and `--json` every such command has. */
export interface PushArgv {
  pushToHub: boolean;
  repoId: string;
  private: boolean;
  token: string | undefined;
  quiet: boolean;
  json: boolean;
}

/** How the output is pushed when the run is done: options of `convert`, `finalize` and `slurm`. */
export function withPushFlags<T>(y: Argv<T>) {
  return y
    .option('push-to-hub', { type: 'boolean', default: false, describe: 'Push the output to the Hub when done (needs a token: hf auth login, HF_TOKEN or --token)' })
    .option('repo-id', { requiresArg: true, default: DEFAULT_REPO_ID, coerce: text('--repo-id'), describe: 'Dataset repo to push to' })
    .option('private', { type: 'boolean', default: false, describe: 'Create the repo private, if it does not exist' })
    .option('token', { requiresArg: true, coerce: text('--token'), describe: 'Hugging Face token (default: HF_TOKEN, else the token file of hf auth login)' });
}

/** The options of `convert`, which `slurm` takes too (it passes them on to every part). */
export function withConvertFlags<T>(y: Argv<T>) {
  return withPushFlags(y)
    .option('input', { alias: 'i', type: 'string', array: true, coerce: paths('--input'), describe: 'Parquet files or directories of them (default: download --dataset)' })
    .option('dataset', { requiresArg: true, coerce: text('--dataset'), describe: `A dataset on the Hub to download and convert (default when no --input: ${DEFAULTS.dataset})`, conflicts: 'input' })
    .option('revision', { requiresArg: true, coerce: text('--revision'), describe: 'Branch, tag or commit of --dataset (default main)' })
    .option('output', { alias: 'o', requiresArg: true, demandOption: true, coerce: text('--output'), describe: 'Dataset directory to write' })
    .option('num-proc', { requiresArg: true, coerce: numProcFlag, describe: `Worker threads, 1 to ${MAX_WORKERS_PER_CORE} × the cores (default: the available cores)` })
    .option('writer-batch-size', { requiresArg: true, default: DEFAULTS.writerBatchSize, coerce: inRange('--writer-batch-size', RANGES.writerBatchSize), describe: 'Rows per task sent to a worker; does not change the output' })
    .option('test-size', { requiresArg: true, default: String(DEFAULTS.testSize), coerce: testSize, describe: 'Test split: a fraction below 1 with a decimal point (rows = ceil(n × F)), or whole digits for a number of rows' })
    .option('seed', { requiresArg: true, default: DEFAULTS.seed, coerce: inRange('--seed', RANGES.seed), describe: `Seed of the train/test split, ${RANGES.seed.min} to ${RANGES.seed.max}` })
    .option('images', { requiresArg: true, choices: CHOICES.images, default: DEFAULTS.images, coerce: text('--images'), describe: 'keep: pass normal images through unchanged; or re-encode every image' })
    .option('quality', { requiresArg: true, coerce: inRange('--quality', RANGES.quality), describe: `JPEG/WebP quality, ${RANGES.quality.min} to ${RANGES.quality.max}, with --images jpeg|webp (default ${DEFAULTS.quality})` })
    .option('max-side', { requiresArg: true, coerce: inRange('--max-side', RANGES.maxSide), describe: 'Shrink images whose longest side is larger (pixels)' })
    .option('max-pixels', { requiresArg: true, default: DEFAULTS.maxPixels, coerce: inRange('--max-pixels', RANGES.maxPixels), describe: `Refuse larger images before decoding (bomb guard), at most ${RANGES.maxPixels.max} (above it, Pillow refuses them)` })
    .option('max-shard-size', { requiresArg: true, default: DEFAULTS.maxShardSize, coerce: text('--max-shard-size'), describe: 'Largest uncompressed shard, as datasets counts it' })
    .option('max-reject-fraction', { requiresArg: true, default: DEFAULTS.maxRejectFraction, coerce: inRange('--max-reject-fraction', RANGES.maxRejectFraction), describe: `Exit 1 when more than this fraction of the rows (${RANGES.maxRejectFraction.min} to ${RANGES.maxRejectFraction.max}) is rejected` })
    .option('max-row-group-bytes', { requiresArg: true, default: DEFAULTS.maxRowGroupBytes, coerce: text('--max-row-group-bytes'), describe: 'Refuse input row groups larger than this (uncompressed), before reading' })
    .option('max-bytes-in-flight', {
      requiresArg: true,
      coerce: text('--max-bytes-in-flight'),
      describe: 'Most image data read and not yet written; memory is about this plus a fixed cost (default 64MiB × --num-proc + 128MiB)',
    })
    .option('on-bad-image', { requiresArg: true, choices: CHOICES.onBadImage, default: DEFAULTS.onBadImage, coerce: text('--on-bad-image'), describe: 'skip: put rows with a bad image in rejects/ and go on; fail: stop the run' })
    .option('image-timeout', { requiresArg: true, default: DEFAULTS.imageTimeout, coerce: inRange('--image-timeout', RANGES.imageTimeout), describe: 'Seconds one image may take before its worker is stopped and the row retried, then rejected' })
    .option('overwrite', { type: 'boolean', default: false, describe: 'Replace an existing output of this tool (never a directory of other files)' })
    .option('resume', { type: 'boolean', default: true, describe: 'Take up an interrupted run of the same command from its checkpoint in <output>.partial (--no-resume: start over)' })
    .option('checkpoint-every', { requiresArg: true, default: DEFAULTS.checkpointEvery, coerce: text('--checkpoint-every'), describe: 'Take a checkpoint after each stretch of this much input (uncompressed)' })
    .option('cache', { type: 'boolean', default: true, describe: 'Keep what was found of each image for later runs, which then decode only new images (--no-cache: neither use nor fill it)' })
    .option('cache-size', { requiresArg: true, default: DEFAULTS.cacheSize, coerce: text('--cache-size'), describe: 'Most the cache may hold (least recently used entries go first); it is $RLAIF_V_CACHE, else ~/.cache/rlaif-v' })
    .option('columns', {
      requiresArg: true,
      coerce: text('--columns'),
      describe: 'Columns named otherwise than in RLAIF-V: image=IMG,question=Q,chosen=C,rejected=R (any of them); the image column may be a datasets Image, binary, or a path relative to the parquet file',
    })
    .option('num-shards', { requiresArg: true, coerce: inRange('--num-shards', RANGES.numShards), describe: 'Convert one part of this many, for a run over several machines; then rlaif-v finalize' })
    .option('shard-index', {
      requiresArg: true,
      coerce: inRange('--shard-index', RANGES.shardIndex),
      describe: 'The part to convert, 0 to --num-shards less one (default in a Slurm array job: SLURM_ARRAY_TASK_ID less SLURM_ARRAY_TASK_MIN)',
    })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress or summary on stderr' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON on stdout' });
}

/**
 * The part a `convert` converts: `--num-shards` with `--shard-index`, or, in a Slurm array job, with the task's place in
 * the array (`SLURM_ARRAY_TASK_ID` less `SLURM_ARRAY_TASK_MIN`). Nothing for a whole run.
 *
 * @throws {OptionError} for one flag without the other, or a Slurm task id that is not a part of `--num-shards`.
 */
export function partOf(
  argv: { numShards?: number | undefined; shardIndex?: number | undefined; pushToHub?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): { numShards: number; shardIndex: number } | Record<string, never> {
  const { numShards, shardIndex } = argv;
  if (numShards === undefined) {
    if (shardIndex !== undefined) throw new OptionError('--shard-index needs --num-shards, the number of parts');
    return {};
  }
  if (argv.pushToHub === true) {
    throw new OptionError('--push-to-hub pushes a whole output, not one part: give it to rlaif-v finalize, which puts the parts together');
  }
  if (shardIndex !== undefined) {
    if (shardIndex >= numShards) throw new OptionError(`--shard-index takes 0 to ${numShards - 1} with --num-shards ${numShards}, got ${shardIndex}`);
    return { numShards, shardIndex };
  }
  const id = env.SLURM_ARRAY_TASK_ID;
  if (id === undefined || id === '') {
    throw new OptionError('--num-shards needs --shard-index, the part to convert (in a Slurm array job it is taken from SLURM_ARRAY_TASK_ID)');
  }
  const min = env.SLURM_ARRAY_TASK_MIN ?? '0';
  const index = /^\d+$/.test(id) && /^\d+$/.test(min) ? Number(id) - Number(min) : NaN;
  if (!(index >= 0 && index < numShards)) {
    throw new OptionError(
      `SLURM_ARRAY_TASK_ID ${JSON.stringify(id)} (less SLURM_ARRAY_TASK_MIN ${JSON.stringify(min)}) is not a part of --num-shards ${numShards}: ` +
        `submit the array as --array=0-${numShards - 1}, or give --shard-index`,
    );
  }
  return { numShards, shardIndex: index };
}
