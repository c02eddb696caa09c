import { lstat, mkdir, readdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { OutputError } from '../errors.js';
import { liveLockHolder, tryLock, type LockHolder } from './file-lock.js';
import { createMarker, MARKER_FILE, markedAs, updateMarker, type MarkerKind, type ToolMarker } from './tool-marker.js';

/**
 * A run's staging directory, `<output>.partial` beside the output (a part's and finalize's inside it): made and marked
 * as this tool's, or taken up from a dead run when marked so; held by a lock while a run works in it.
 */

/**
 * What this tool makes beside an output, by name: only its staging directory, `<output>.partial` (its parts and
 * finalize's work are inside it). Everything else it makes lives inside a directory of its own. (The bystander test
 * lays out look-alikes of these names and checks no command touches them.)
 */
export const SIBLING_SUFFIXES = ['.partial'] as const;

export async function stats(target: string): Promise<import('node:fs').Stats | null> {
  return stat(target).catch(() => null);
}

/** What is at `target` itself (a link as a link), or null. */
export async function lstats(target: string): Promise<import('node:fs').Stats | null> {
  return lstat(target).catch(() => null);
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

export const LOCK = 'lock.json';

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
