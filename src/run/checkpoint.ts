import { isInsideName, MARKER_FILE } from '../dirs/tool-marker.js';
import { replaceFile } from '../dirs/tool-file.js';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { SplitName } from './convert-report.js';
import type { SplitPlan } from '../plan/plan-split.js';
import type { RejectSegment } from '../write/rejects-file.js';
import type { SplitWriterState, WrittenSplit } from '../write/split-writer.js';

/**
 * A run's checkpoint: what its staging directory holds at a row of the input, written at the end of every unit of
 * work (a few tens of MB of input) so that a run killed at any moment can be taken up by the same command. The files
 * it names are checked against their CRC-32 before they are kept; nothing is written to them before the checkpoint
 * that names them is replaced, so a crash can only leave a checkpoint older than the files, never newer.
 */
export interface Checkpoint {
  version: 1;
  /** The run's fingerprint (input and the options that shape the data): a checkpoint of another run is not used. */
  fingerprint: string;
  /** Every input row before this one is accounted for: in the files, pending (see `pendingFrom`), or rejected. */
  row: number;
  /** Each split's files. */
  splits: Record<string, SplitWriterState>;
  /**
   * Per split, the input row of the first row not yet in its files (waiting for its row group to fill), or null when
   * none is: rows of that split from there up to `row` are converted again by a run that takes this one up.
   */
  pendingFrom: Record<string, number | null>;
  rejects: { segments: RejectSegment[]; counts: Record<string, number> };
  /**
   * The splits whose writing is finished, once every row is read: their files closed, and when they were cut again,
   * cut (in a folder apart until settled, see settleSplit). Such a split is in neither `splits` nor `pendingFrom`: a
   * run that takes this one up reads none of its rows, settles it, and goes on with the rest of the end of the run.
   */
  finished?: Record<string, WrittenSplit>;
}

export const CHECKPOINT_FILE = 'checkpoint.json';

/** Replaces the checkpoint in `dir` (written aside, then renamed over the old one: a crash leaves one or the other). */
export async function writeCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  const file = path.join(dir, CHECKPOINT_FILE);
  await replaceFile(file, JSON.stringify(checkpoint));
}

/** CRC-32 of the first `length` bytes of a file (all of it when `length` is undefined), or null when it is shorter. */
async function fileCrc(file: string, length?: number): Promise<number | null> {
  const size = (await stat(file).catch(() => null))?.size;
  if (size === undefined || (length !== undefined && size < length)) return null;
  if (length === 0) return 0;
  let crc = 0;
  for await (const chunk of createReadStream(file, { end: (length ?? size) - 1, highWaterMark: 2 ** 20 })) crc = crc32(chunk as Buffer, crc);
  return crc;
}

/** What was found in a staging directory: a checkpoint to take up, or why there is none that can be. */
export type Found = { checkpoint: Checkpoint } | { checkpoint: null; reason: string };

/**
 * Reads the checkpoint in `dir` and checks it belongs to this run (same fingerprint) and that every file it names is
 * there, with the bytes it had. `noCheckpoint` says why there is none when the directory holds finished work instead
 * (default: the run stopped before its first).
 */
export async function findCheckpoint(dir: string, fingerprint: string, noCheckpoint?: string | null): Promise<Found> {
  let checkpoint: Checkpoint;
  try {
    checkpoint = JSON.parse(await readFile(path.join(dir, CHECKPOINT_FILE), 'utf8')) as Checkpoint;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { checkpoint: null, reason: code === 'ENOENT' ? (noCheckpoint ?? 'it stopped before its first checkpoint') : 'its checkpoint cannot be read' };
  }
  if (checkpoint.version !== 1) return { checkpoint: null, reason: 'its checkpoint is of another version of the tool' };
  if (checkpoint.fingerprint !== fingerprint) {
    return { checkpoint: null, reason: 'it was converting other input or with other options (its fingerprint differs)' };
  }
  // Every file it names must lie in the staging directory: an edited checkpoint must not make a run write elsewhere.
  if (![...filesOf(checkpoint), ...namesOfFinished(checkpoint)].every(isInsideName)) return { checkpoint: null, reason: 'its checkpoint names files outside its directory' };
  for (const split of Object.values(checkpoint.splits)) {
    for (const shard of split.writer.shards) {
      if ((await fileCrc(path.join(dir, shard.file))) !== shard.crc) return { checkpoint: null, reason: `${shard.file} is missing or not as it was written` };
    }
    const open = split.writer.open;
    if (open === null) continue;
    const partial = path.join(dir, `${open.file}.partial`);
    if ((await fileCrc(partial, open.sink.length)) === open.sink.crc) continue;
    // Closed after the checkpoint (the run was killed as it finished): the file is the same up to the checkpoint.
    const closed = path.join(dir, open.file);
    if (!existsSync(partial) && (await fileCrc(closed, open.sink.length)) === open.sink.crc) await rename(closed, partial);
    else return { checkpoint: null, reason: `${open.file}.partial is missing or not as it was written` };
  }
  for (const split of Object.values(checkpoint.finished ?? {})) {
    for (const file of split.files) {
      // Where it goes, or still apart (a run killed before, or while, the split was settled).
      const apart = split.apart === undefined ? null : path.join(dir, split.apart, path.basename(file.file));
      if ((await fileCrc(path.join(dir, file.file))) === file.crc || (apart !== null && (await fileCrc(apart)) === file.crc)) continue;
      return { checkpoint: null, reason: `${file.file} is missing or not as it was written` };
    }
  }
  for (const segment of checkpoint.rejects.segments) {
    if ((await fileCrc(path.join(dir, segment.file))) !== segment.crc) return { checkpoint: null, reason: `${segment.file} is missing or not as it was written` };
  }
  return { checkpoint };
}

/** The names a checkpoint's finished splits give besides their files: the folder apart and the old files it removes. */
function namesOfFinished(checkpoint: Checkpoint): string[] {
  return Object.values(checkpoint.finished ?? {}).flatMap((split) => [...(split.apart === undefined ? [] : [split.apart]), ...(split.replaces ?? [])]);
}

/** The files of a checkpoint, relative to the staging directory. */
function filesOf(checkpoint: Checkpoint): Set<string> {
  const files = new Set<string>();
  for (const split of Object.values(checkpoint.splits)) {
    for (const shard of split.writer.shards) files.add(shard.file);
    if (split.writer.open !== null) files.add(`${split.writer.open.file}.partial`);
  }
  for (const segment of checkpoint.rejects.segments) files.add(segment.file);
  for (const split of Object.values(checkpoint.finished ?? {})) {
    for (const file of split.files) {
      files.add(file.file);
      if (split.apart !== undefined) files.add(`${split.apart}/${path.basename(file.file)}`);
    }
  }
  return files;
}

/**
 * Removes from a staging directory (this tool's, by its marker) everything but the lock, the marker and, when one is
 * taken up, the checkpoint and its files:
 * what a dead run wrote after its last checkpoint, and all of it when its work cannot be used.
 */
export async function clearStaging(dir: string, keep: Checkpoint | null): Promise<void> {
  const files = keep === null ? new Set<string>() : filesOf(keep);
  if (keep !== null) files.add(CHECKPOINT_FILE);
  files.add('lock.json');
  files.add(MARKER_FILE);
  const visit = async (relative: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, relative), { withFileTypes: true })) {
      const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        await visit(name);
        // Folders left empty go too (a half-done re-cut of the shards), but for data/, which a run always has.
        if (name !== 'data' && (await readdir(path.join(dir, name))).length === 0) await rm(path.join(dir, name), { recursive: true, force: true });
      } else if (!files.has(name)) await rm(path.join(dir, name), { force: true });
    }
  };
  await visit('');
}

/**
 * The rows of `[first, end)` (all of the input, or a part's) a run taking up `checkpoint` reads: those its files do not
 * hold yet. Before the checkpoint's row, only the rows of each split from the first one still pending (and not
 * rejected); then all of them.
 */
export function rowsToRead(checkpoint: Checkpoint | null, split: SplitPlan, [first, end]: [number, number]): [number, number][] {
  if (checkpoint === null) return [[first, end]];
  const rejected = new Set(checkpoint.rejects.segments.flatMap((segment) => segment.indices));
  const pending = Object.values(checkpoint.pendingFrom).filter((row): row is number => row !== null);
  const ranges: [number, number][] = [];
  const add = (start: number, end: number): void => {
    const last = ranges.at(-1);
    if (last !== undefined && last[1] === start) last[1] = end;
    else ranges.push([start, end]);
  };
  for (let row = Math.min(checkpoint.row, ...pending); row < checkpoint.row; row++) {
    const from = checkpoint.pendingFrom[split.testMask[row] === 1 ? 'test' : 'train'] ?? null;
    if (from !== null && row >= from && !rejected.has(row)) add(row, row + 1);
  }
  add(checkpoint.row, end);
  return ranges;
}

/** The input rows of the last rows appended to each split, enough to name the first of those not yet in its files. */
export class RecentRows {
  readonly #rows: Record<SplitName, number[]> = { train: [], test: [] };
  readonly #keep: number;

  constructor(keep: number) {
    this.#keep = keep;
  }

  add(split: SplitName, row: number): void {
    const rows = this.#rows[split];
    rows.push(row);
    if (rows.length > 2 * this.#keep) rows.splice(0, rows.length - this.#keep);
  }

  /** The input row of the first of the last `pending` rows of `split`, or null when none is pending. */
  firstOfLast(split: SplitName, pending: number): number | null {
    if (pending === 0) return null;
    const rows = this.#rows[split];
    const row = rows[rows.length - pending];
    if (row === undefined) throw new Error(`${pending} rows of ${split} pending, but only ${rows.length} known`);
    return row;
  }
}
