import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { isAlive } from './file-lock.js';
import { packageInfo } from './package-info.js';
import type { ImagePolicy, ImageStoreSettings } from './types.js';
import { KeptTable, keyWords } from '../workers/image-cache.js';
import { parseVerdictLine, verdictLine } from '../workers/image-store.js';

/**
 * The persistent cache of image work as a whole (workers/image-store.ts is what a worker does with it): where it is,
 * the verdicts of earlier runs loaded for a new one, its size kept under a bound, and `rlaif-v cache info|clear`.
 */

/** Bumped whenever what a verdict means changes (the checks, the normalizing): older entries are then not used. */
const CACHE_FORMAT = 1;

/** `$RLAIF_V_CACHE`, else `$XDG_CACHE_HOME/rlaif-v`, else `~/.cache/rlaif-v`. */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RLAIF_V_CACHE !== undefined && env.RLAIF_V_CACHE !== '') return path.resolve(env.RLAIF_V_CACHE);
  if (env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '') return path.join(path.resolve(env.XDG_CACHE_HOME), 'rlaif-v');
  return path.join(homedir(), '.cache', 'rlaif-v');
}

/**
 * The key of an image policy in the cache: the policy, the tool's version and libvips' (`vips`, which re-encodes), and
 * the cache's format. Any of them changed, nothing cached before is used.
 */
export function policyKey(policy: ImagePolicy, vips: string): string {
  const identity = { format: CACHE_FORMAT, tool: `${packageInfo.name} ${packageInfo.version}`, vips, policy };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 24);
}

async function logFiles(dir: string): Promise<string[]> {
  const names = await readdir(path.join(dir, 'verdicts')).catch(() => [] as string[]);
  return names.filter((name) => name.endsWith('.log')).map((name) => path.join(dir, 'verdicts', name));
}

/** Every whole verdict line of `policy` in the logs: the keys of images found whole and kept. */
async function keptKeys(dir: string, policy: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const file of await logFiles(dir)) {
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        const key = parseVerdictLine(line, policy);
        if (key !== null) keys.add(key);
      }
    } catch {
      // A log that cannot be read (removed meanwhile) holds nothing for this run.
    }
  }
  return keys;
}

/**
 * What a run needs of the cache in `dir` for `policy`: its settings, with the kept verdicts of earlier runs loaded into
 * a table in shared memory, and how many there were.
 */
export async function openImageStore(dir: string, policy: ImagePolicy, vips: string): Promise<{ settings: ImageStoreSettings; verdicts: number }> {
  const key = policyKey(policy, vips);
  const keys = await keptKeys(dir, key);
  const kept = KeptTable.buffer(keys.size);
  const table = new KeptTable(kept);
  for (const cached of keys) {
    const words = keyWords(cached);
    if (words !== null) table.add(words);
  }
  return { settings: { dir, policy: key, run: `${process.pid}-${Date.now()}-${hostname()}`, kept }, verdicts: keys.size };
}

/** Every file of the cache with its size and when it was last used. */
async function entries(dir: string): Promise<{ file: string; size: number; used: number }[]> {
  const found: { file: string; size: number; used: number }[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const info = await stat(file).catch(() => null);
    if (info !== null) found.push({ file, size: info.size, used: info.mtimeMs });
  }
  return found;
}

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
  const logs = await logFiles(dir);
  if (logs.length > 32) {
    const done: string[] = [];
    const lines = new Set<string>();
    for (const file of logs) {
      const info = await stat(file).catch(() => null);
      if (info === null || maybeWritten(file, info.mtimeMs)) continue;
      for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
        const [record] = line.split('\t');
        const [policy, key] = (record ?? '').split(' ');
        if (policy !== undefined && key !== undefined && parseVerdictLine(line, policy) !== null) lines.add(verdictLine(policy, key));
      }
      done.push(file);
    }
    if (done.length > 1) {
      const merged = path.join(dir, 'verdicts', `merged-${randomUUID()}.log`);
      await writeFile(`${merged}.tmp`, [...lines].join(''));
      await rename(`${merged}.tmp`, merged);
      for (const file of done) await rm(file, { force: true });
    }
  }
  const all = await entries(dir);
  let total = all.reduce((sum, entry) => sum + entry.size, 0);
  let removed = 0;
  for (const entry of all.sort((a, b) => a.used - b.used)) {
    if (total <= maxBytes) break;
    if (entry.file.endsWith('.log') && maybeWritten(entry.file, entry.used)) continue;
    await rm(entry.file, { force: true });
    total -= entry.size;
    removed++;
  }
  return { removed, bytes: total };
}

/** What the cache holds: its size, and its entries by kind. */
export interface ImageStoreInfo {
  dir: string;
  bytes: number;
  /** Verdict lines ("found whole, kept"), over every policy. */
  verdicts: number;
  reencoded: number;
  rejected: number;
}

export async function imageStoreInfo(dir: string): Promise<ImageStoreInfo> {
  const all = await entries(dir);
  let verdicts = 0;
  for (const file of all.filter((entry) => entry.file.endsWith('.log'))) {
    for await (const line of createInterface({ input: createReadStream(file.file), crlfDelay: Infinity })) if (line.includes('\t')) verdicts++;
  }
  return {
    dir,
    bytes: all.reduce((sum, entry) => sum + entry.size, 0),
    verdicts,
    reencoded: all.filter((entry) => entry.file.endsWith('.bin')).length,
    rejected: all.filter((entry) => entry.file.endsWith('.rej')).length,
  };
}

/** Empties the cache (the directory stays). */
export async function clearImageStore(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(dir)) await rm(path.join(dir, name), { recursive: true, force: true });
}
