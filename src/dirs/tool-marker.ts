import { randomUUID } from 'node:crypto';
import { link, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { readSmallFile, replaceFile } from './tool-file.js';
import { hostname } from 'node:os';
import path from 'node:path';

/**
 * The proof that a directory is this tool's: a marker file it writes into every directory it makes and may later
 * remove, empty, move or take up. Names prove nothing (`out.old-2024` may be a user's backup, `out.partial` a user's
 * folder); the marker says what the directory was made as and under which name, so a directory renamed since (a
 * published output the user renamed to keep it) is taken for nothing.
 */

export const MARKER_FILE = '.rlaif-v.json';

/**
 * What a directory was made as: a run's `staging` directory (`<output>.partial`), a `part`'s directory of a run over
 * several machines, `finalize`'s output being put together (`final`), a published `output` (what a staging or final
 * directory becomes, renamed), the image `cache`, a `sample`.
 */
export type MarkerKind = 'staging' | 'part' | 'final' | 'output' | 'cache' | 'sample';

export interface ToolMarker {
  tool: 'rlaif-v';
  kind: MarkerKind;
  /** The directory's name when it was made. */
  name: string;
  /** For a directory that becomes an output when published: the output's name, which it then has. */
  output?: string;
  /** A random id, different for every directory made. */
  id: string;
  created: string;
  host: string;
  pid: number;
  /**
   * `publishing`: the directory holds a finished output, being moved into place (a run killed meanwhile is finished by
   * the next); `discarding`: it is being removed.
   */
  state?: 'publishing' | 'discarding';
  /** Set on the parts' staging directory by finalize before it publishes: the id its report carries. */
  finalizing?: string;
  /** While publishing: the output it replaces (its device, inode and birth time), which the user allowed it to replace. */
  replaces?: { dev: number; ino: number; born: number };
}

const TOOL = 'rlaif-v';

/** A marker is a few hundred bytes; anything much larger in its place is not one. */
const MAX_MARKER_BYTES = 64 * 1024;

function content(marker: ToolMarker): string {
  return `${JSON.stringify(marker, null, 2)}\n`;
}

/** The marker of `dir`, or null when it has none (or one that does not read as this tool's). */
export async function readMarker(dir: string): Promise<ToolMarker | null> {
  try {
    const text = await readSmallFile(path.join(dir, MARKER_FILE), MAX_MARKER_BYTES);
    if (text === null) return null;
    const marker = JSON.parse(text) as Partial<ToolMarker> | null;
    if (marker === null || typeof marker !== 'object' || marker.tool !== TOOL || typeof marker.kind !== 'string' || typeof marker.name !== 'string') return null;
    return marker as ToolMarker;
  } catch {
    return null;
  }
}

/** The marker of `dir` when it says `dir` was made as `kind` under the name it has now; null otherwise. */
export async function markedAs(dir: string, kind: MarkerKind): Promise<ToolMarker | null> {
  const marker = await readMarker(dir);
  return marker !== null && marker.kind === kind && marker.name === path.basename(dir) ? marker : null;
}

/** The marker of `dir` when it is an output this tool published under the name it has now; null otherwise. */
export async function markedOutput(dir: string): Promise<ToolMarker | null> {
  const marker = await readMarker(dir);
  return marker !== null && marker.output !== undefined && marker.output === path.basename(dir) ? marker : null;
}

/**
 * Writes the marker of a directory this run has just made (`dir` must exist): created in one step, never over another
 * (EEXIST when `dir` has one already).
 */
export async function createMarker(dir: string, kind: MarkerKind, options: { output?: string } = {}): Promise<ToolMarker> {
  const marker: ToolMarker = {
    tool: TOOL,
    kind,
    name: path.basename(dir),
    ...(options.output === undefined ? {} : { output: options.output }),
    id: randomUUID(),
    created: new Date().toISOString(),
    host: hostname(),
    pid: process.pid,
  };
  const temp = path.join(dir, `${MARKER_FILE}.${marker.id}.tmp`);
  await writeFile(temp, content(marker), { flag: 'wx' });
  try {
    await link(temp, path.join(dir, MARKER_FILE));
  } finally {
    await rm(temp, { force: true });
  }
  return marker;
}

/**
 * Whether `name`, a file name a manifest or checkpoint of this tool gives relative to its directory, stays inside that
 * directory: relative, no `..`, no empty or `.` part. Anything else (an edited or forged file) is not to be used.
 */
export function isInsideName(name: unknown): name is string {
  if (typeof name !== 'string' || name === '' || path.isAbsolute(name) || name.includes('\\') || name.includes('\0')) return false;
  return name.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Removes what a run killed while it wrote the marker of `dir` left: its temporary files (this tool's by their names, in a directory marked as its own). */
export async function removeMarkerLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(`${MARKER_FILE}.`) && name.endsWith('.tmp')) await rm(path.join(dir, name), { force: true });
  }
}

/** Replaces the marker of `dir` (which must be this run's) in one step: `changes` applied to `marker`. */
export async function updateMarker(dir: string, marker: ToolMarker, changes: Partial<Omit<ToolMarker, 'tool' | 'id' | 'created' | 'host' | 'pid'>>): Promise<ToolMarker> {
  const updated = { ...marker, ...changes };
  await replaceFile(path.join(dir, MARKER_FILE), content(updated));
  return updated;
}

/**
 * Removes `dir`, a directory marked as this tool's, its marker last: a run killed on the way leaves the marker with
 * whatever was not yet removed, still this tool's for the next run to finish removing (a recursive rm takes the
 * entries in any order, and killed after the marker went, it left a directory no run may touch). `beforeRemove` hears
 * of each entry before it goes (tests stop there).
 */
export async function removeMarkedDirectory(dir: string, hooks: { beforeRemove?: (name: string) => void } = {}): Promise<void> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (names === null) return;
  for (const name of names.filter((entry) => entry !== MARKER_FILE)) {
    hooks.beforeRemove?.(name);
    await rm(path.join(dir, name), { recursive: true, force: true });
  }
  hooks.beforeRemove?.(MARKER_FILE);
  await rm(path.join(dir, MARKER_FILE), { force: true });
  await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}
