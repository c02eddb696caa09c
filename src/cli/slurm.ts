import path from 'node:path';
import { DEFAULTS } from '../options/option-table.js';
import { resolveDataset } from '../hub/resolve-dataset.js';
import { OptionError } from '../errors.js';
import { hubSettings } from '../hub/hub-settings.js';
import { checkOutputDir } from '../dirs/output-dir.js';
import { checkPushAccess } from '../hub/push-dataset.js';
import type { PushArgv } from './convert-flags.js';
import { slurmScripts, submitSlurmJob, type SlurmJob } from './slurm-job.js';
import { BIN_PATH } from '../util/paths.js';

/** `rlaif-v slurm`: the command's own work, apart from the option table (main.ts). */

/** What `slurm` reads of its options (yargs' argv): convert's, and its own. */
export interface SlurmArgv extends PushArgv {
  input: string[] | undefined;
  dataset: string | undefined;
  revision: string | undefined;
  output: string;
  overwrite: boolean;
  numProc: number | undefined;
  numShards: number | undefined;
  shardIndex: number | undefined;
  tasks: number;
  partition: string | undefined;
  time: string | undefined;
  cpusPerTask: number | undefined;
  sbatchArg: string[] | undefined;
  logDir: string | undefined;
  dryRun: boolean;
}

/** Flags of `slurm` that are not `convert`'s: taken out of what the parts are given. `true`: the flag takes a value. */
const SLURM_ONLY_FLAGS = new Map<string, boolean>([
  ['tasks', true],
  ['partition', true],
  ['time', true],
  ['cpus-per-task', true],
  ['sbatch-arg', true],
  ['log-dir', true],
  ['repo-id', true],
  ['token', true],
  ['dry-run', false],
  ['push-to-hub', false],
  ['private', false],
  ['json', false],
]);

/**
 * The arguments of `slurm` that are `convert`'s, as typed (less the command word, and less `drop`, which takes a
 * value): what every part gets.
 */
function convertArgsOf(args: readonly string[], drop: readonly string[] = []): string[] {
  const command = args.indexOf('slurm');
  const words = command < 0 ? args : [...args.slice(0, command), ...args.slice(command + 1)];
  const kept: string[] = [];
  for (let at = 0; at < words.length; at++) {
    const arg = words[at] ?? '';
    const name = /^--(?:no-)?([^=]+)/.exec(arg)?.[1]?.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
    const takesValue = name === undefined ? undefined : drop.includes(name) ? true : SLURM_ONLY_FLAGS.get(name);
    if (takesValue === undefined) kept.push(arg);
    else if (arg.includes('=')) continue;
    // A flag's value goes with it; yargs also takes `true` or `false` after a boolean flag.
    else if (takesValue || /^(true|false)$/.test(words[at + 1] ?? '')) at++;
  }
  return kept;
}

/** `slurm`: a conversion over several machines, as a Slurm array job and a finalize job after it. */
export async function runSlurm(
  argv: SlurmArgv,
  args: readonly string[],
  signal: () => AbortSignal,
): Promise<void> {
  if (argv.token !== undefined) {
    throw new OptionError('--token would be written into the batch scripts: log in with hf auth login or set HF_TOKEN instead (sbatch passes the environment on to the jobs)');
  }
  if (argv.numShards !== undefined || argv.shardIndex !== undefined) {
    throw new OptionError('slurm gives the parts --num-shards (from --tasks) and each its --shard-index (from its array task): leave both out');
  }
  const output = path.resolve(argv.output);
  await checkOutputDir(output, { overwrite: argv.overwrite, inputs: argv.input ?? [] });
  // Every part reads the same commit of a Hub dataset, whatever is pushed to it while they wait in the queue.
  let revision: string[] = [];
  if ((argv.input === undefined || argv.input.length === 0) && !argv.dryRun) {
    const repo = argv.dataset ?? DEFAULTS.dataset;
    const source = await resolveDataset({ repo, revision: argv.revision ?? 'main', settings: await hubSettings() });
    revision = ['--revision', source.commit];
  }
  const convertArgs = [...convertArgsOf(args, revision.length > 0 ? ['revision'] : []), ...revision];
  if (argv.cpusPerTask !== undefined && argv.numProc === undefined) convertArgs.push('--num-proc', String(argv.cpusPerTask));
  const job: SlurmJob = {
    command: [process.execPath, BIN_PATH],
    convertArgs,
    finalizeArgs: [...(argv.overwrite ? ['--overwrite'] : []), ...(argv.pushToHub ? ['--push-to-hub', '--repo-id', argv.repoId] : []), ...(argv.private ? ['--private'] : [])],
    output,
    tasks: argv.tasks,
    logDir: path.resolve(argv.logDir ?? `${output}.slurm`),
    workDir: process.cwd(),
    partition: argv.partition,
    time: argv.time,
    cpusPerTask: argv.cpusPerTask,
    sbatchArgs: argv.sbatchArg ?? [],
  };
  if (argv.dryRun) {
    const scripts = slurmScripts(job);
    process.stdout.write(
      `# ${path.join(job.logDir, 'convert.sbatch')}\n${scripts.convert}\n# ${path.join(job.logDir, 'finalize.sbatch')}\n${scripts.finalize}\n` +
        (argv.input === undefined || argv.input.length === 0 ? `# When submitted, --revision ${argv.revision ?? 'main'} is pinned to the commit it names, for every part.\n` : '') +
        `# Submitted as: sbatch --parsable ${path.join(job.logDir, 'convert.sbatch')}\n` +
        `#          then: sbatch --parsable --dependency=afterok:<its job id> --kill-on-invalid-dep=yes ${path.join(job.logDir, 'finalize.sbatch')}\n`,
    );
    return;
  }
  if (argv.pushToHub) await checkPushAccess(await hubSettings(), argv.repoId, { signal: signal() });
  const submitted = await submitSlurmJob(job);
  if (argv.json) process.stdout.write(`${JSON.stringify(submitted, null, 2)}\n`);
  if (!argv.quiet) {
    process.stderr.write(
      `Submitted the conversion of ${output} as array job ${submitted.arrayJob} (${job.tasks} task(s)), and finalize as job ` +
        `${submitted.finalizeJob}, which runs once every task has succeeded.\n` +
        `Follow them: squeue -j ${submitted.arrayJob},${submitted.finalizeJob}\n` +
        `Logs: ${submitted.logs.parts} and ${submitted.logs.finalize}; the batch scripts are beside them.\n` +
        'If a part fails, finalize is cancelled: submit the same command again, and the finished parts are kept.\n',
    );
  }
}
