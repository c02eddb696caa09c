import { randomUUID } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { markedAs } from '../dirs/tool-marker.js';
import { isAlive } from '../dirs/file-lock.js';
import { parseVerdictLine, verdictLine } from './image-store.js';
import { cacheHost, logFiles, storeEntries } from './image-store-dir.js';

/**
 * Whether a log of verdicts (`<pid>-<time>-<host>-<thread>.log`) or a pack (`<...>-<thread>-<n>.pack`) may still be
 * written to: its run lives (on this host) and is not `finished`, or it is less than a day old (another host's).
 * Merged logs are written once.
 */
function maybeWritten(file: string, mtimeMs: number, finished: string | null): boolean {
  const match = /^((\d+)-(\d+)-(.+))-\d+(-\d+\.(pack|idx)|\.log)$/.exec(path.basename(file));
  if (match === null) return false;
  if (match[1] === finished) return false;
  if (match[4] === cacheHost()) return isAlive(Number(match[2])) && !startedAfter(Number(match[2]), Number(match[3]));
  return Date.now() - mtimeMs < 24 * 3600 * 1000;
}

/**
 * Whether the process with this id started after `timeMs` (where Linux's /proc says; false where it cannot tell): then
 * it is not the run that wrote the file, but a later process given the same id (a container's first process always has
 * id 1). A minute's slack for the clock's steps.
 */
function startedAfter(pid: number, timeMs: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command's name in parentheses: the start time (in clock ticks since boot) is the 20th.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const bootSeconds = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(bootSeconds)) return false;
    return (bootSeconds + ticks / 100) * 1000 > timeMs + 60_000;
  } catch {
    return false;
  }
}

/** A file of the cache, or a pack with its index: what is removed as one, by when it was last used. */
interface Removable {
  files: string[];
  size: number;
  used: number;
}

/** The cache's files as what may be removed: a pack and its index together (an index without its pack alone). */
function removables(all: { file: string; size: number; used: number }[]): Removable[] {
  const packs = new Map<string, Removable>();
  const single: Removable[] = [];
  for (const { file, size, used } of all) {
    const pack = /\.(pack|idx)$/.test(file) ? file.replace(/\.(pack|idx)$/, '') : null;
    if (pack === null) {
      single.push({ files: [file], size, used });
      continue;
    }
    const group = packs.get(pack) ?? { files: [], size: 0, used: 0 };
    group.files.push(file);
    group.size += size;
    // A pack is marked when read; its index only when written.
    group.used = Math.max(group.used, used);
    packs.set(pack, group);
  }
  return [...single, ...packs.values()];
}

/**
 * Keeps the cache in `dir` within `maxBytes`: many logs of finished runs are merged into one, then the least recently
 * used entries are removed until the rest fits (a pack of images and its index as one). What other runs are writing is
 * left alone; `finished` is the run (`<pid>-<time>-<host>`) that has just closed its own.
 */
export async function trimImageStore(dir: string, maxBytes: number, finished: string | null = null): Promise<{ removed: number; bytes: number }> {
  if ((await markedAs(dir, 'cache')) === null) return { removed: 0, bytes: 0 };
  await mergeLogs(dir).catch(() => undefined);
  const all = removables(await storeEntries(dir));
  let total = all.reduce((sum, entry) => sum + entry.size, 0);
  let removed = 0;
  for (const entry of all.sort((a, b) => a.used - b.used)) {
    if (total <= maxBytes) break;
    if (entry.files.some((file) => maybeWritten(file, entry.used, finished))) continue;
    // The index first: a pack without one is never read, an index without its pack only finds nothing.
    let gone = true;
    for (const file of entry.files.sort((a, b) => Number(b.endsWith('.idx')) - Number(a.endsWith('.idx')))) {
      gone = (await rm(file, { force: true }).then(() => true, () => false)) && gone;
    }
    // One that could not be removed (another user's, a read-only mount) still counts against the bound.
    if (!gone) continue;
    total -= entry.size;
    removed++;
  }
  return { removed, bytes: total };
}

/** Merges the logs of finished runs, once there are many, into one (each line once); a log that cannot be read stays. */
async function mergeLogs(dir: string): Promise<void> {
  const logs = await logFiles(dir);
  if (logs.length <= 32) return;
  const merged = path.join(dir, 'verdicts', `merged-${randomUUID()}.log`);
  const seen = new Set<string>();
  const done: string[] = [];
  const out = await open(`${merged}.tmp`, 'w');
  try {
    for (const file of logs) {
      const info = await stat(file).catch(() => null);
      if (info === null || maybeWritten(file, info.mtimeMs, null)) continue;
      try {
        for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
          const [record] = line.split('\t');
          const [policy, key] = (record ?? '').split(' ');
          if (policy === undefined || key === undefined || parseVerdictLine(line, policy) === null || seen.has(record ?? '')) continue;
          seen.add(record ?? '');
          await out.write(verdictLine(policy, key));
        }
        done.push(file);
      } catch {
        // Removed by another run's merge meanwhile, or not ours to read: left as it is.
      }
    }
  } finally {
    await out.close();
  }
  if (done.length < 2) {
    await rm(`${merged}.tmp`, { force: true });
    return;
  }
  await rename(`${merged}.tmp`, merged);
  for (const file of done) await rm(file, { force: true }).catch(() => undefined);
}
