import { lstat, mkdir, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { OutputError } from '../errors.js';
import { liveLockHolder, tryLock, type LockHolder } from './file-lock.js';
import { packageInfo } from '../util/package-info.js';
import { createMarker, MARKER_FILE, markedAs, markedOutput, readMarker, removeMarkedDirectory, removeMarkerLeftovers, updateMarker, type MarkerKind, type ToolMarker } from './tool-marker.js';

/**
 * The output directory's safety rules. A conversion writes into `<output>.partial` beside the output and moves it into
 * place at the end; `--overwrite` replaces only what this tool made. The tool removes, empties, moves or takes up a
 * directory only when it carries this tool's marker saying what it was made as, under the name it has (see
 * tool-marker): never for its name alone. Anything else in the way is refused before any work.
 */

/**
 * What this tool makes beside an output, by name: only its staging directory, `<output>.partial` (its parts and
 * finalize's work are inside it). Everything else it makes lives inside a directory of its own. (The bystander test
 * lays out look-alikes of these names and checks no command touches them.)
 */
export const SIBLING_SUFFIXES = ['.partial'] as const;

/** Inside a staging directory being published: the output it replaces, moved there in one step, removed last. */
export const REPLACED_OUTPUT = '.replaced-output';

/** What was found of an interrupted publishing, and finished. */
export interface Leftover {
  path: string;
  pid: number;
  /** `removed`: an output replaced, or a directory being discarded; `restored`: a finished output moved into place. */
  action: 'removed' | 'restored';
}

async function stats(target: string): Promise<import('node:fs').Stats | null> {
  return stat(target).catch(() => null);
}

/** What is at `target` itself (a link as a link), or null. */
async function lstats(target: string): Promise<import('node:fs').Stats | null> {
  return lstat(target).catch(() => null);
}

/**
 * Which directory is at a path: what a run approved at its start must still be there when it publishes. Its device,
 * inode and time of birth (an inode number is reused once its directory is gone; its birth time is not).
 */
export interface OutputIdentity {
  dev: number;
  ino: number;
  born: number;
}

/** The identity of what is at `output` now, or null when nothing is. */
export async function outputIdentity(output: string): Promise<OutputIdentity | null> {
  const info = await lstats(output);
  return info === null ? null : { dev: info.dev, ino: info.ino, born: info.birthtimeMs };
}

function sameIdentity(a: OutputIdentity | null, b: OutputIdentity | null | undefined): boolean {
  return a === null || b === null || b === undefined ? a === (b ?? null) : a.dev === b.dev && a.ino === b.ino && a.born === b.born;
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

/**
 * Whether `dir` is an output of this tool under the name it has: its marker says it was published as that name, or
 * (an output of an older version, from before markers) it holds a report.json written by this tool.
 */
export async function isOurOutput(dir: string): Promise<boolean> {
  if ((await markedOutput(dir)) !== null) return true;
  if ((await readMarker(dir)) !== null) return false; // a marker of something else, or of an output renamed since
  // An output of a version before markers: its report names this very directory (a report copied elsewhere does not).
  try {
    const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as { tool?: { name?: unknown }; output?: { dir?: unknown } };
    return report.tool?.name === packageInfo.name && report.output?.dir === path.resolve(dir);
  } catch {
    return false;
  }
}

/** Whether one of two paths is or lies inside the other, links resolved. */
export async function overlaps(a: string, b: string): Promise<boolean> {
  const [first, second] = [await resolvedPath(a), await resolvedPath(b)];
  return within(first, second) || within(second, first);
}

/**
 * Checks that `dirs` (what a run may write, remove or take up: the output, its staging directory, the cache) are
 * apart from every input: none is an input, holds one or lies inside an input directory.
 *
 * @throws {OutputError} `ERR_OUTPUT_OVERLAPS_INPUT` (exit 2) naming both.
 */
export async function checkApartFromInputs(dirs: readonly { path: string; what: string }[], inputs: readonly string[]): Promise<void> {
  for (const input of inputs) {
    const inputPath = await resolvedPath(input);
    const inputIsDir = (await stats(inputPath))?.isDirectory() ?? false;
    for (const dir of dirs) {
      const resolved = await resolvedPath(dir.path);
      if (within(inputPath, resolved) || (inputIsDir && within(resolved, inputPath))) {
        throw new OutputError(
          'ERR_OUTPUT_OVERLAPS_INPUT',
          `${dir.what} ${dir.path} ${within(inputPath, resolved) ? (inputPath === resolved ? 'is' : 'holds') : 'lies inside'} the input ${input}: ` +
            'write the dataset to a directory apart from its source.',
        );
      }
    }
  }
}

/**
 * Checks `--output` before any work is done and returns its absolute path: where it is (not a file, not the working
 * directory), apart from the input (it and its staging directory), and, when it exists, that it may be replaced.
 * Finishes first what a run killed while publishing left (see {@link finishPublishing}); `finish` hears of it, and with
 * `allowFinished`, an output put in place so is returned unchecked (the caller compares it with what it would make).
 *
 * @throws {OutputError} (exit 2) `ERR_OUTPUT_IS_FILE` for an existing file; `ERR_OUTPUT_OVERLAPS_INPUT` when the output
 * or its staging directory is an input, holds one or lies inside an input directory; `ERR_OUTPUT_HOLDS_CWD` for the
 * working directory or a parent of it; `ERR_OUTPUT_EXISTS` for an existing directory without `overwrite`;
 * `ERR_OUTPUT_NOT_OURS` for a non-empty directory this tool did not write, even with `overwrite`.
 */
export async function checkOutputDir(
  output: string,
  options: { overwrite: boolean; inputs: readonly string[]; finish?: (leftover: Leftover) => void; allowFinished?: boolean },
): Promise<string> {
  const absolute = path.resolve(output);
  const resolved = await resolvedPath(absolute);
  const link = await lstats(absolute);
  if (link?.isSymbolicLink() === true) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `--output ${absolute} is a symbolic link: give the directory itself (or another output), so that nothing but it is replaced.`);
  }
  const info = await stats(absolute);
  if (info !== null && !info.isDirectory()) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `--output ${absolute} is a file, not a directory: choose a directory to write the dataset into.`);
  }
  const ancestor = await existingAncestor(path.dirname(absolute));
  if (!ancestor.info.isDirectory()) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `--output ${absolute} cannot be made: ${ancestor.path} is a file, not a directory.`);
  }
  await checkApartFromInputs(
    [
      { path: absolute, what: '--output' },
      { path: stagingDir(absolute), what: 'The staging directory of --output,' },
    ],
    options.inputs,
  );
  if (within(await resolvedPath(process.cwd()), resolved)) {
    throw new OutputError(
      'ERR_OUTPUT_HOLDS_CWD',
      `--output ${absolute} is the working directory or a parent of it: choose a new directory for the dataset, such as ./rlaif-v.`,
    );
  }
  const finished = await finishPublishing(absolute);
  for (const leftover of finished) options.finish?.(leftover);
  if ((await stats(absolute)) === null) return absolute;
  // An output a killed run had finished, put in place just now: the caller sees whether it is the one it would make.
  if (options.allowFinished === true && finished.some((leftover) => leftover.action === 'restored')) return absolute;
  if (!options.overwrite) {
    throw new OutputError('ERR_OUTPUT_EXISTS', `${absolute} already exists. Replace it with the overwrite option (--overwrite), or choose another output.`);
  }
  if ((await readdir(absolute)).length > 0 && !(await isOurOutput(absolute))) {
    throw new OutputError(
      'ERR_OUTPUT_NOT_OURS',
      `${absolute} holds files that are not an output of rlaif-v published there (it has no marker or report.json of this tool), so the overwrite ` +
        'option will not replace it. Remove it yourself if it is no longer needed, or choose another output.',
    );
  }
  return absolute;
}

/**
 * Finishes what a run killed while publishing `output` left, and nothing else. A finished output in its staging
 * directory (`<output>.partial`, or finalize's `<output>.partial/final`, marked as being published, holding its
 * report.json and no checkpoint) is moved into place when `output` is missing, or when what is at `output` is the very
 * output that run was allowed to replace (its marker says which); an output it replaced, moved into it, is removed;
 * the parts' directory finalize was discarding is removed. Each is recognised by this tool's marker, never by its name.
 */
export async function finishPublishing(output: string): Promise<Leftover[]> {
  const done: Leftover[] = [];
  const root = stagingDir(output);
  for (const staging of [root, path.join(root, 'final')]) {
    const marker = await markedAs(staging, staging === root ? 'staging' : 'final');
    if (marker?.state !== 'publishing' || marker.output !== path.basename(output)) continue;
    // Marked so only once whole (report.json written); a directory taken up since says so no more.
    if ((await stats(path.join(staging, 'report.json'))) === null) continue;
    const now = await outputIdentity(output);
    if (now !== null && !sameIdentity(now, marker.replaces)) continue;
    // What is left of the work that made it: its checkpoint and its rejects' segments (joined into rejects.parquet).
    await rm(path.join(staging, 'checkpoint.json'), { force: true });
    for (const name of await readdir(path.join(staging, 'rejects')).catch(() => [] as string[])) {
      if (/^segment-\d+\.parquet$/.test(name)) await rm(path.join(staging, 'rejects', name), { force: true });
    }
    if (now !== null) await rename(output, path.join(staging, REPLACED_OUTPUT));
    await rename(staging, output);
    await rm(path.join(output, 'lock.json'), { force: true });
    await removeMarkerLeftovers(output);
    done.push({ path: staging, pid: marker.pid, action: 'restored' });
    await updateMarker(output, marker, { kind: 'output', name: path.basename(output), state: undefined, replaces: undefined });
  }
  // Moved into place by a run killed before its marker said it is the output (the marker still says what it was made
  // as, for this output, and that it was being published); while that run lives, its lock, moved with it, says so.
  const moved = await markedOutput(output);
  const unlocked = moved !== null && (await liveLockHolder(path.join(output, LOCK))) === null;
  if (moved !== null && unlocked && moved.kind !== 'output' && moved.state === 'publishing') {
    await rm(path.join(output, LOCK), { force: true });
    await removeMarkerLeftovers(output);
    await updateMarker(output, moved, { kind: 'output', name: path.basename(output), state: undefined, replaces: undefined });
    done.push({ path: output, pid: moved.pid, action: 'restored' });
  }
  const published = await markedOutput(output);
  if (published !== null && unlocked && (await stats(path.join(output, REPLACED_OUTPUT))) !== null) {
    await rm(path.join(output, REPLACED_OUTPUT), { recursive: true, force: true });
    done.push({ path: path.join(output, REPLACED_OUTPUT), pid: published.pid, action: 'removed' });
    await updateMarker(output, published, { kind: 'output', name: path.basename(output), state: undefined, replaces: undefined });
  }
  const parts = await markedAs(root, 'staging');
  if (parts?.state === 'discarding') {
    await removeMarkedDirectory(root);
    done.push({ path: root, pid: parts.pid, action: 'removed' });
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

/** The staging directory of `output`: where a conversion writes until it is done, and what a re-run takes up. */
export function stagingDir(output: string): string {
  return `${output}${SIBLING_SUFFIXES[0]}`;
}

const LOCK = 'lock.json';

/** A directory this run holds: `adopted` when it was a dead run's, left for this one to take up. */
export interface Staging {
  readonly dir: string;
  readonly adopted: boolean;
  /** Its marker, as this run last wrote it. */
  marker: ToolMarker;
  /** Stops renewing the lock and removes it (the directory stays; `moved`: where it is now, when it was published). */
  release(moved?: string): Promise<void>;
  /** Checks the lock is still this run's, before a step others could see (see HeldLock.verify). */
  verify(): Promise<void>;
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

/** How long a directory another run has just made may stay without its marker (it writes it a moment later). */
const MARKER_WAIT_MS = 2000;

/**
 * Makes `dir` (its parent must exist) as a directory of this tool's of `kind`, marked so, or finds it made so:
 * `created` tells which. A directory there without the marker (a user's, or anything else) is refused.
 *
 * @throws {OutputError} `ERR_OUTPUT_NOT_OURS` (exit 2) for a directory in the way that this tool did not make as
 * `kind`; `ERR_OUTPUT_IS_FILE` for a file there; `ERR_OUTPUT_UNWRITABLE` when it cannot be made.
 */
export async function ownDirectory(dir: string, kind: MarkerKind, options: { output?: string; what: string }): Promise<{ marker: ToolMarker; created: boolean }> {
  try {
    await mkdir(dir);
    try {
      return { marker: await createMarker(dir, kind, options.output === undefined ? {} : { output: options.output }), created: true };
    } catch (error) {
      throw unwritable(dir, options.what, error);
    }
  } catch (error) {
    if (error instanceof OutputError) throw error;
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw unwritable(dir, options.what, error);
  }
  const info = await lstats(dir);
  if (info?.isSymbolicLink() === true) {
    throw new OutputError('ERR_OUTPUT_NOT_OURS', `${dir} is in the way of ${options.what}: it is a symbolic link, which is neither used nor removed. Move it away, or choose another output.`);
  }
  if (info !== null && !info.isDirectory()) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `${dir} is in the way of ${options.what}: it is a file, not a directory. Move it away, or choose another output.`);
  }
  // Made by another run a moment ago (two parts starting at once), its marker may be on its way.
  for (let waited = 0; ; waited += 50) {
    const marker = await markedAs(dir, kind);
    if (marker !== null) return { marker, created: false };
    const empty = (await readdir(dir).catch(() => ['?'])).every((name) => name.startsWith(MARKER_FILE));
    if (!empty || waited >= MARKER_WAIT_MS) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new OutputError(
    'ERR_OUTPUT_NOT_OURS',
    `${dir} is in the way of ${options.what}: it was not made by rlaif-v for it (it has no ${MARKER_FILE} saying so), so it is ` +
      'neither used nor removed. Move it away (or remove it, if nothing in it is needed), or choose another output.',
  );
}

/**
 * Takes the staging directory `dir` for this run: `<output>.partial` (kind `staging`, which becomes `output`), a
 * part's directory in it (kind `part`), or finalize's (kind `final`); its parent must be this tool's or, for
 * `<output>.partial`, exist or be made. It is made, marked, when there is none; one this tool made so, left by a run
 * that is no longer running (see {@link liveHolder}), is adopted, for the caller to take up or clear.
 *
 * @throws {OutputError} `ERR_OUTPUT_BUSY` (exit 2) when a live run holds it; `ERR_OUTPUT_NOT_OURS` when a directory is
 * in its place that this tool did not make as it; `ERR_OUTPUT_UNWRITABLE` (exit 2), as {@link makeDirectory}.
 */
export async function openStaging(dir: string, kind: 'staging' | 'part' | 'final', output?: string): Promise<Staging> {
  if (kind === 'staging') await makeDirectory(path.dirname(dir), 'the output');
  const { marker, created } = await ownDirectory(dir, kind, { what: `the staging directory of ${output ?? dir}`, ...(output === undefined ? {} : { output: path.basename(output) }) });
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
  // Taken up, a directory left being published (its output in the way was not the one it was to replace) is this
  // run's to work in again: it no longer says it is finished.
  let current = marker;
  if (!created && marker.state !== undefined) current = await updateMarker(dir, marker, { state: undefined, replaces: undefined });
  return { dir, adopted: !created, marker: current, release: (moved) => lock.release(moved === undefined ? undefined : path.join(moved, LOCK)), verify: () => lock.verify() };
}

/**
 * Marks a staging directory as holding a whole output, being published in place of `approved` (what was at the output
 * when the run started): from then on a run killed is finished by the next (see {@link finishPublishing}), whatever is
 * left of the work that made it (its checkpoint, its rejects' segments) is rubbish. Checks the lock first.
 */
export async function markPublishing(staging: Staging, approved: OutputIdentity | null): Promise<ToolMarker> {
  await staging.verify();
  if (staging.marker.state !== 'publishing') {
    staging.marker = await updateMarker(staging.dir, staging.marker, { state: 'publishing', replaces: approved ?? undefined });
  }
  return staging.marker;
}

/**
 * Moves the finished staging directory (marked as this run's, for `output`) into place, its lock held to the end (then
 * removed from the output). What is at `output` must be what the run was allowed to replace when it started
 * (`approved`: nothing, or that very directory): anything else that appeared or took its place is left as it is, and
 * the finished output stays in the staging directory (marked as being published) for the next run to put in place.
 * The marker says it is being published and what it replaces; the old output is moved into it, in one step, and
 * removed only once the new one is in place; if that move fails, the old output is put back. A run killed on the way
 * leaves what {@link finishPublishing} finishes. Published, its marker says it is the output.
 *
 * @throws {OutputError} `ERR_OUTPUT_CHANGED` (exit 2) when what is at `output` is not what was approved.
 */
export async function publishOutput(staging: Staging, output: string, approved: OutputIdentity | null): Promise<void> {
  const marker = await markPublishing(staging, approved);
  const now = await outputIdentity(output);
  if (!sameIdentity(now, approved)) {
    throw new OutputError(
      'ERR_OUTPUT_CHANGED',
      `${output} ${approved === null ? 'appeared' : now === null ? 'went away' : 'was replaced by something else'} while this run worked: it is left as it is, ` +
        `and the finished output stays in ${staging.dir}. Move what is at ${output} away and run the same command again to put it in place.`,
    );
  }
  const replaced = path.join(staging.dir, REPLACED_OUTPUT);
  if (approved !== null) await rename(output, replaced);
  try {
    await rename(staging.dir, output);
  } catch (error) {
    if (approved !== null) await rename(replaced, output);
    throw error;
  }
  // The lock, moved with it, is held until the output is whole and says so: a run killed before is finished by the
  // next (see finishPublishing), which leaves alone an output whose run still holds it.
  if (approved !== null) await rm(path.join(output, REPLACED_OUTPUT), { recursive: true, force: true });
  await updateMarker(output, marker, { kind: 'output', name: path.basename(output), state: undefined, replaces: undefined });
  await staging.release(output);
}
