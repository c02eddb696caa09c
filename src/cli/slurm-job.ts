import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OptionError, RlaifError } from '../errors.js';
import { packageInfo } from '../util/package-info.js';

/**
 * A conversion over several machines as Slurm jobs: an array job of `tasks` tasks, each converting one part
 * (`convert --num-shards K`, its index from `SLURM_ARRAY_TASK_ID`), and a finalize job that runs once every task has
 * ended well (`--dependency=afterok`, and `--kill-on-invalid-dep=yes` so that a failed part cancels it rather than
 * leaving it pending for ever).
 */
export interface SlurmJob {
  /** The command that runs rlaif-v on the nodes: node and the path of its bin.js (on a filesystem the nodes share). */
  command: string[];
  /** The arguments of `convert` every part gets (`--num-shards` is added). */
  convertArgs: string[];
  /** The arguments of `finalize` after the output (`--overwrite`, `--push-to-hub`, `--repo-id`...). */
  finalizeArgs: string[];
  /** The output directory, absolute. */
  output: string;
  tasks: number;
  /** Where the batch scripts and the logs go (`part-<task>.log`, `finalize.log`). */
  logDir: string;
  /** The jobs' working directory: where relative paths in the arguments are taken from. */
  workDir: string;
  partition?: string | undefined;
  time?: string | undefined;
  cpusPerTask?: number | undefined;
  /** More `#SBATCH` lines for both jobs, each one sbatch option (`--account=proj`, `--mem=16G`). */
  sbatchArgs: string[];
}

/** `it's` → `'it'\''s'`: one word to bash, whatever it holds. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function directives(job: SlurmJob, name: string, log: string): string[] {
  return [
    `#SBATCH --job-name=${shellQuote(name)}`,
    `#SBATCH --output=${shellQuote(path.join(job.logDir, log))}`,
    `#SBATCH --chdir=${shellQuote(job.workDir)}`,
    ...(job.partition === undefined ? [] : [`#SBATCH --partition=${shellQuote(job.partition)}`]),
    ...(job.time === undefined ? [] : [`#SBATCH --time=${shellQuote(job.time)}`]),
    ...job.sbatchArgs.map((arg) => `#SBATCH ${arg}`),
  ];
}

/** Characters that would end or bend a line of a batch script, quoted or not: a newline ends a `#SBATCH` line. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Refuses any value bound for a batch script that holds a control character (a newline, a carriage return, a tab...):
 * a newline in `--output` ended a `#SBATCH` line or a comment, and what followed it ran on the node.
 *
 * @throws {OptionError} naming the value.
 */
function checkScriptValues(job: SlurmJob): void {
  const values: [string, string][] = [
    ...job.command.map((word): [string, string] => ['the command', word]),
    ...job.convertArgs.map((word): [string, string] => ['an argument of convert', word]),
    ...job.finalizeArgs.map((word): [string, string] => ['an argument of finalize', word]),
    ['--output', job.output],
    ['--log-dir', job.logDir],
    ['the working directory', job.workDir],
    ...(job.partition === undefined ? [] : [['--partition', job.partition] as [string, string]]),
    ...(job.time === undefined ? [] : [['--time', job.time] as [string, string]]),
    ...job.sbatchArgs.map((arg): [string, string] => ['--sbatch-arg', arg]),
  ];
  for (const [what, value] of values) {
    if (CONTROL.test(value)) {
      throw new OptionError(
        `${what} ${JSON.stringify(value)} holds a control character (a newline, a tab...), which would end or bend a line of the batch scripts: give it without one.`,
      );
    }
  }
}

/**
 * The two batch scripts: the array job's, and finalize's. Values go into them quoted as one word each, and into no
 * comment.
 *
 * @throws {OptionError} for a value holding a control character.
 */
export function slurmScripts(job: SlurmJob): { convert: string; finalize: string } {
  checkScriptValues(job);
  const run = job.command.map(shellQuote).join(' ');
  const convert = [
    '#!/bin/bash',
    ...directives(job, 'rlaif-v-convert', 'part-%a.log'),
    `#SBATCH --array=0-${job.tasks - 1}`,
    ...(job.cpusPerTask === undefined ? [] : [`#SBATCH --cpus-per-task=${job.cpusPerTask}`]),
    `# Written by rlaif-v ${packageInfo.version}. Task N of this array converts part N of ${job.tasks} of the input into`,
    '# <output>.partial/parts/ (the output is on the line below). Submitted again, finished parts are kept and interrupted',
    '# ones taken up; one part alone runs again with sbatch --array=N. finalize.sbatch puts the parts together once every',
    '# task has succeeded.',
    // The task's own id, not its place in the array: `sbatch --array=2 convert.sbatch` runs part 2 again by itself.
    `exec ${run} convert ${[...job.convertArgs, '--num-shards', String(job.tasks)].map(shellQuote).join(' ')} --shard-index "$SLURM_ARRAY_TASK_ID"`,
    '',
  ].join('\n');
  const finalize = [
    '#!/bin/bash',
    ...directives(job, 'rlaif-v-finalize', 'finalize.log'),
    `# Written by rlaif-v ${packageInfo.version}. Submitted with --dependency=afterok on the array job of convert.sbatch: it`,
    `# runs once all ${job.tasks} parts have succeeded, and puts them together into the output named below.`,
    `exec ${run} finalize ${[job.output, ...job.finalizeArgs].map(shellQuote).join(' ')}`,
    '',
  ].join('\n');
  return { convert, finalize };
}

/** The ids of the jobs submitted, and where their scripts and logs are. */
export interface SubmittedJobs {
  arrayJob: string;
  finalizeJob: string;
  scripts: { convert: string; finalize: string };
  logs: { parts: string; finalize: string };
}

/** How `sbatch` is run: injectable for tests. Resolves with its stdout; rejects with what went wrong. */
export type RunCommand = (command: string, args: string[], env?: NodeJS.ProcessEnv) => Promise<string>;

const runCommand: RunCommand = (command, args, env) =>
  new Promise((resolve, reject) => {
    execFile(command, args, { env: env ?? process.env }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(Object.assign(error, { stderr }));
    });
  });

async function sbatch(run: RunCommand, args: string[]): Promise<string> {
  let stdout: string;
  try {
    stdout = await run('sbatch', ['--parsable', ...args]);
  } catch (error) {
    const { code, stderr } = error as NodeJS.ErrnoException & { stderr?: string };
    if (code === 'ENOENT') {
      throw new RlaifError('ERR_SLURM', 'sbatch was not found: run this where Slurm jobs are submitted (a login node), or pass --dry-run to see the scripts.', {
        cause: error,
        exitCode: 2,
      });
    }
    throw new RlaifError('ERR_SLURM', `sbatch ${args.join(' ')} failed: ${(stderr ?? String(error)).trim()}`, { cause: error });
  }
  // `--parsable` prints `<job id>` or `<job id>;<cluster>`.
  const id = /^(\d+)/.exec(stdout.trim())?.[1];
  if (id === undefined) throw new RlaifError('ERR_SLURM', `sbatch ${args.join(' ')} printed no job id: ${JSON.stringify(stdout.trim())}`);
  return id;
}

/**
 * Writes the two batch scripts into `job.logDir` and submits them: the array job, then finalize depending on it.
 *
 * @throws {RlaifError} `ERR_SLURM`: sbatch is missing (exit 2), failed, or printed no job id.
 */
export async function submitSlurmJob(job: SlurmJob, run: RunCommand = runCommand): Promise<SubmittedJobs> {
  const scripts = slurmScripts(job);
  await mkdir(job.logDir, { recursive: true });
  const files = { convert: path.join(job.logDir, 'convert.sbatch'), finalize: path.join(job.logDir, 'finalize.sbatch') };
  await writeFile(files.convert, scripts.convert, { mode: 0o755 });
  await writeFile(files.finalize, scripts.finalize, { mode: 0o755 });
  const arrayJob = await sbatch(run, [files.convert]);
  const finalizeJob = await sbatch(run, [`--dependency=afterok:${arrayJob}`, '--kill-on-invalid-dep=yes', files.finalize]);
  return {
    arrayJob,
    finalizeJob,
    scripts: files,
    logs: { parts: path.join(job.logDir, 'part-<task>.log'), finalize: path.join(job.logDir, 'finalize.log') },
  };
}
