import { mkdir, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { OutputError } from './errors.js';
import { isAlive, liveLockHolder, tryLock, type LockHolder } from './file-lock.js';
import { packageInfo } from './package-info.js';

/**
 * The output directory's safety rules. A conversion writes into `<output>.partial` beside the output and moves
 * it into place at the end; `--overwrite` replaces only what this tool made. Nothing here ever removes a directory
 * that is not recognisably this tool's: a user's input, home or working directory must survive any typo.
 */

/**
 * Where a replaced output is moved aside while the new one takes its place: `<output>.old-`, then the host and the
 * process id, so a run on another machine sharing the filesystem is never taken for a dead one here.
 */
function oldSibling(output: string): string {
  return `${output}.old-${hostname()}-${process.pid}`;
}

/** What a leftover of an earlier, killed run was, and what was done with it. */
export interface Leftover {
  path: string;
  pid: number;
  /** `removed` a staging directory; `restored` a previous output a dead run had moved aside, back to `--output`. */
  action: 'removed' | 'restored';
}

async function stats(target: string): Promise<import('node:fs').Stats | null> {
  return stat(target).catch(() => null);
}

/** `target` with symbolic links resolved, as far as it exists; the missing rest appended as given. */
async function resolvedPath(target: string): Promise<string> {
  const absolute = path.resolve(target);
  try {
    return await realpath(absolute);
  } catch {
    const parent = path.dirname(absolute);
    return parent === absolute ? absolute : path.join(await resolvedPath(parent), path.basename(absolute));
  }
}

/** The nearest of `dir` and its parents that exists. */
async function existingAncestor(dir: string): Promise<{ path: string; info: import('node:fs').Stats }> {
  for (let at = dir; ; at = path.dirname(at)) {
    const info = await stats(at);
    if (info !== null || path.dirname(at) === at) return { path: at, info: info ?? (await stat(at)) };
  }
}

/** Whether `inner` is `outer` or lies inside it. */
function within(inner: string, outer: string): boolean {
  const relative = path.relative(outer, inner);
  return relative === '' || (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative));
}

/** Whether `dir` holds a report.json written by this tool (what every finished conversion leaves). */
async function isOurOutput(dir: string): Promise<boolean> {
  try {
    const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as { tool?: { name?: unknown } };
    return report.tool?.name === packageInfo.name;
  } catch {
    return false;
  }
}

/**
 * Checks `--output` before any work is done and returns its absolute path.
 *
 * @throws {OutputError} (exit 2) `ERR_OUTPUT_IS_FILE` for an existing file; `ERR_OUTPUT_OVERLAPS_INPUT` when the output
 * is an input, holds one or lies inside an input directory; `ERR_OUTPUT_HOLDS_CWD` for the working directory or a
 * parent of it; `ERR_OUTPUT_EXISTS` for an existing directory without `overwrite`; `ERR_OUTPUT_NOT_OURS` for a
 * non-empty directory this tool did not write, even with `overwrite`.
 */
export async function checkOutputDir(output: string, options: { overwrite: boolean; inputs: readonly string[] }): Promise<string> {
  const absolute = path.resolve(output);
  const resolved = await resolvedPath(absolute);
  const info = await stats(absolute);
  if (info !== null && !info.isDirectory()) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `--output ${absolute} is a file, not a directory: choose a directory to write the dataset into.`);
  }
  const ancestor = await existingAncestor(path.dirname(absolute));
  if (!ancestor.info.isDirectory()) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `--output ${absolute} cannot be made: ${ancestor.path} is a file, not a directory.`);
  }
  for (const input of options.inputs) {
    const inputPath = await resolvedPath(input);
    const inputIsDir = (await stats(inputPath))?.isDirectory() ?? false;
    if (within(inputPath, resolved) || (inputIsDir && within(resolved, inputPath))) {
      throw new OutputError(
        'ERR_OUTPUT_OVERLAPS_INPUT',
        `--output ${absolute} ${within(inputPath, resolved) ? (inputPath === resolved ? 'is' : 'holds') : 'lies inside'} the input ${input}: ` +
          'write the dataset to a directory apart from its source.',
      );
    }
  }
  if (within(await resolvedPath(process.cwd()), resolved)) {
    throw new OutputError(
      'ERR_OUTPUT_HOLDS_CWD',
      `--output ${absolute} is the working directory or a parent of it: choose a new directory for the dataset, such as ./rlaif-v.`,
    );
  }
  if (info === null) return absolute;
  if (!options.overwrite) {
    throw new OutputError('ERR_OUTPUT_EXISTS', `${absolute} already exists. Replace it with the overwrite option (--overwrite), or choose another output.`);
  }
  if ((await readdir(absolute)).length > 0 && !(await isOurOutput(absolute))) {
    throw new OutputError(
      'ERR_OUTPUT_NOT_OURS',
      `${absolute} holds files that are not an output of rlaif-v (it has no report.json written by this tool), so the overwrite ` +
        'option will not replace it. Remove it yourself if it is no longer needed, or choose another output.',
    );
  }
  return absolute;
}

/** The host and pid at the end of a leftover's name (no host in the names of version 0.1 runs). */
const RUN_SUFFIX = /^(?:(.+)-)?(\d+)$/;

/**
 * Clears what killed runs on this host left beside `output`: their staging directories are removed, and a previous
 * output that a run had moved aside just before it died is moved back when `output` is missing (removed when a newer
 * output took its place). Only leftovers of processes no longer running are touched.
 */
export async function clearLeftovers(output: string): Promise<Leftover[]> {
  const dir = path.dirname(output);
  const name = path.basename(output);
  const names = await readdir(dir).catch(() => [] as string[]);
  const done: Leftover[] = [];
  for (const entry of names.sort()) {
    const kind = entry.startsWith(`${name}.partial-`) ? 'partial' : entry.startsWith(`${name}.old-`) ? 'old' : entry.startsWith(`${name}.removing-`) ? 'removing' : null;
    if (kind === null) continue;
    const run = RUN_SUFFIX.exec(entry.slice(name.length + kind.length + 2));
    // What is being removed is removed by anyone (two removals at once do no harm): it may be another host's.
    if (run === null || (kind !== 'removing' && run[1] !== undefined && run[1] !== hostname())) continue;
    const pid = Number(run[2]);
    if (pid === process.pid || (kind !== 'removing' && isAlive(pid))) continue;
    const leftover = path.join(dir, entry);
    if (!(await stats(leftover))?.isDirectory()) continue;
    if (kind === 'old' && (await stats(output)) === null && (await isOurOutput(leftover))) {
      await rename(leftover, output);
      done.push({ path: leftover, pid, action: 'restored' });
    } else {
      await rm(leftover, { recursive: true, force: true });
      done.push({ path: leftover, pid, action: 'removed' });
    }
  }
  return done;
}

/**
 * Makes `dir` and its missing parents, one level at a time: Node's recursive mkdir loops forever on some filesystems
 * (/proc answers ENOENT, then EEXIST). An existing directory is fine; another process may be making the same parents.
 *
 * @throws {OutputError} `ERR_OUTPUT_UNWRITABLE` (exit 2) naming the directory that could not be made, and why; `what`
 * says what it was for ("the output", "the sample").
 */
export async function makeDirectory(dir: string, what: string): Promise<void> {
  const missing: string[] = [];
  for (let at = path.resolve(dir); (await stats(at)) === null && path.dirname(at) !== at; at = path.dirname(at)) missing.unshift(at);
  for (const level of missing) {
    try {
      await mkdir(level);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && (await stats(level))?.isDirectory()) continue;
      throw unwritable(level, what, error);
    }
  }
}

function unwritable(dir: string, what: string, error: unknown): OutputError {
  const reason = (error as NodeJS.ErrnoException).code ?? String(error);
  return new OutputError('ERR_OUTPUT_UNWRITABLE', `Cannot write ${what}: making ${dir} failed (${reason}). Choose a directory you can write to.`, {
    cause: error,
  });
}

/**
 * Where a finished run's staging directory goes to be removed: `<output>.removing-<host>-<pid>`, renamed there in one
 * step, so a run killed while removing it leaves a name that says it is rubbish, which the next run clears.
 */
export function removingDir(output: string): string {
  return `${output}.removing-${hostname()}-${process.pid}`;
}

/** The staging directory of `output`: where a conversion writes until it is done, and what a re-run takes up. */
export function stagingDir(output: string): string {
  return `${output}.partial`;
}

const LOCK = 'lock.json';

/** A staging directory this run holds: `adopted` when it was a dead run's, left for this one to take up. */
export interface Staging {
  dir: string;
  adopted: boolean;
  /** Stops renewing the lock and removes it (the directory stays). */
  release(): Promise<void>;
}

/**
 * The run holding staging directory `dir` (its lock's host and pid) while that run lives; null when none does: no lock,
 * or one left by a run that is no longer running (on this host: its process is gone; on another, sharing the
 * filesystem: its lock was not renewed for two minutes).
 */
export async function liveHolder(dir: string): Promise<LockHolder | null> {
  const holder = await liveLockHolder(path.join(dir, LOCK));
  return holder === null || (holder.host === hostname() && holder.pid === process.pid) ? null : holder;
}

/**
 * Takes the staging directory `dir` (`<output>.partial`, or a part's directory in it) for this run, making it and its
 * missing parents when there is none. One left by a run that is no longer running (see {@link liveHolder}) is
 * adopted, for the caller to take up or clear.
 *
 * @throws {OutputError} `ERR_OUTPUT_BUSY` (exit 2) when a live run holds it; `ERR_OUTPUT_UNWRITABLE` (exit 2), as
 * {@link makeDirectory}.
 */
export async function openStaging(dir: string): Promise<Staging> {
  await makeDirectory(path.dirname(dir), 'the output');
  const existing = await stats(dir);
  if (existing !== null && !existing.isDirectory()) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `${dir} is in the way of this run's staging directory: it is not a directory. Remove it.`);
  }
  try {
    await mkdir(dir);
  } catch (error) {
    // There already, or another part of the same run made it a moment before.
    if (!((error as NodeJS.ErrnoException).code === 'EEXIST' && (await stats(dir))?.isDirectory() === true)) throw unwritable(dir, 'the output', error);
  }
  let taken;
  try {
    taken = await tryLock(path.join(dir, LOCK));
  } catch (error) {
    throw unwritable(dir, 'the output', error);
  }
  if ('holder' in taken) {
    throw new OutputError(
      'ERR_OUTPUT_BUSY',
      `${dir} is being written by another run (process ${taken.holder.pid} on ${taken.holder.host}). Wait for it to finish, or stop it and run this again to take up its work.`,
    );
  }
  const lock = taken.lock;
  return { dir, adopted: existing !== null, release: () => lock.release() };
}

/**
 * Moves the finished staging directory into place. An existing output is moved aside first and removed only once the
 * new one is in place; if that move fails, the old output is put back.
 */
export async function publishOutput(staging: string, output: string): Promise<void> {
  const old = oldSibling(output);
  const replacing = (await stats(output)) !== null;
  if (replacing) await rename(output, old);
  try {
    await rename(staging, output);
  } catch (error) {
    if (replacing) await rename(old, output);
    throw error;
  }
  if (replacing) await rm(old, { recursive: true, force: true });
}
