import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { markedAs } from '../dirs/tool-marker.js';
import { isAlive } from '../dirs/file-lock.js';
import { parseVerdictLine, verdictLine } from './image-store.js';
import { logFiles, storeEntries } from './image-store-dir.js';

/**
 * Whether a log of verdicts (`<pid>-<time>-<host>-<thread>.log`) may still be written to: its run lives (on this
 * host), or it is less than a day old (another host's). Merged logs are written once.
 */
function maybeWritten(file: string, mtimeMs: number): boolean {
  const match = /^(\d+)-\d+-(.+)-\d+\.log$/.exec(path.basename(file));
  if (match === null) return false;
  if (match[2] === hostname()) return isAlive(Number(match[1]));
  return Date.now() - mtimeMs < 24 * 3600 * 1000;
}

/**
 * Keeps the cache in `dir` within `maxBytes`: many logs of finished runs are merged into one, then the least recently
 * used entries are removed until the rest fits. What other runs are writing is left alone.
 */
export async function trimImageStore(dir: string, maxBytes: number): Promise<{ removed: number; bytes: number }> {
  if ((await markedAs(dir, 'cache')) === null) return { removed: 0, bytes: 0 };
  await mergeLogs(dir).catch(() => undefined);
  const all = await storeEntries(dir);
  let total = all.reduce((sum, entry) => sum + entry.size, 0);
  let removed = 0;
  for (const entry of all.sort((a, b) => a.used - b.used)) {
    if (total <= maxBytes) break;
    if (entry.file.endsWith('.log') && maybeWritten(entry.file, entry.used)) continue;
    await rm(entry.file, { force: true }).catch(() => undefined);
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
      if (info === null || maybeWritten(file, info.mtimeMs)) continue;
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
