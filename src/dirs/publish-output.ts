import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { OutputError } from '../errors.js';
import { liveLockHolder } from './file-lock.js';
import { LOCK, lstats, stagingDir, stats, type Staging } from './staging.js';
import { markedAs, markedOutput, removeMarkedDirectory, removeMarkerLeftovers, updateMarker, type ToolMarker } from './tool-marker.js';

/**
 * Publishing an output: its staging directory, whole, moved into place, replacing only what the run was allowed to;
 * and what a run killed on the way left, finished by the next. Every step is recognised by this tool's marker.
 */

/** Inside a staging directory being published: the output it replaces, moved there in one step, removed last. */
export const REPLACED_OUTPUT = '.replaced-output';

/** What was found of an interrupted publishing, and finished. */
export interface Leftover {
  path: string;
  pid: number;
  /** `removed`: an output replaced, or a directory being discarded; `restored`: a finished output moved into place. */
  action: 'removed' | 'restored';
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
    await rm(path.join(output, LOCK), { force: true });
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
