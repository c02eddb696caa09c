import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { lstat, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { OutputError } from '../errors.js';
import { checkApartFromInputs, overlaps } from '../dirs/output-dir.js';
import { makeDirectory } from '../dirs/staging.js';
import { createMarker, MARKER_FILE, markedAs } from '../dirs/tool-marker.js';
import { isAlive } from '../dirs/file-lock.js';
import { packageInfo } from '../util/package-info.js';
import type { ImagePolicy } from './image-policy.js';
import type { ImageStoreSettings } from './image-store.js';
import { KeptTable, keyWords } from './image-cache.js';
import { parseVerdictLine, verdictLine } from './image-store.js';
import { JPEG_CHECK_WASM, VERDICT_MODULES } from '../util/paths.js';

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

/** The files whose code decides what an image is found to be: the checks, the header reader, the re-encoding. */
const VERDICT_CODE = VERDICT_MODULES;
const VERDICT_WASM = JPEG_CHECK_WASM;

let codeHash: string | null = null;

/** SHA-256 of that code as built (the same files whether the CLI runs from its bundle or the library is imported). */
function verdictCodeHash(): string {
  if (codeHash === null) {
    const hash = createHash('sha256');
    for (const file of [...VERDICT_CODE, VERDICT_WASM]) {
      try {
        hash.update(readFileSync(file));
      } catch {
        hash.update(`missing ${file}`);
      }
    }
    codeHash = hash.digest('hex');
  }
  return codeHash;
}

/**
 * The key of an image policy in the cache: the policy; the code that checks and re-encodes images (its hash), sharp's
 * and its libraries' versions (`versions`: sharp.versions), Node's zlib (which checks PNGs) and the CPU's kind; the
 * tool's version and the cache's format. Any of them changed, nothing cached before is used.
 */
export function policyKey(policy: ImagePolicy, versions: Record<string, string | undefined>): string {
  const identity = {
    format: CACHE_FORMAT,
    tool: `${packageInfo.name} ${packageInfo.version}`,
    code: verdictCodeHash(),
    versions,
    zlib: process.versions.zlib,
    arch: process.arch,
    policy,
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 24);
}

/** The names of the logs of verdicts the cache writes: a run's and thread's, or a merge of them. */
const LOG_NAME = /^(\d+-\d+-[^/]+-\d+|merged-[0-9a-f-]{36})\.log$/;

/** Whether `folder` of the cache is a folder of its own (a link there is followed by nothing of the cache). */
async function ownFolder(folder: string): Promise<boolean> {
  return (await lstat(folder).catch(() => null))?.isDirectory() === true;
}

async function logFiles(dir: string): Promise<string[]> {
  if (!(await ownFolder(path.join(dir, 'verdicts')))) return [];
  const names = await readdir(path.join(dir, 'verdicts')).catch(() => [] as string[]);
  return names.filter((name) => LOG_NAME.test(name)).map((name) => path.join(dir, 'verdicts', name));
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
export async function openImageStore(dir: string, policy: ImagePolicy, versions: Record<string, string | undefined>): Promise<{ settings: ImageStoreSettings; verdicts: number }> {
  const key = policyKey(policy, versions);
  await ownCacheDir(dir);
  const keys = await keptKeys(dir, key);
  const kept = KeptTable.buffer(keys.size);
  const table = new KeptTable(kept);
  for (const cached of keys) {
    const words = keyWords(cached);
    if (words !== null) table.add(words);
  }
  return { settings: { dir, policy: key, run: `${process.pid}-${Date.now()}-${hostname()}`, kept }, verdicts: keys.size };
}

/** The folders of the cache: nothing else in its directory is ever counted, trimmed or cleared. */
const CACHE_FOLDERS = ['verdicts', 'images'] as const;

/** What the cache's files are called: logs of verdicts, results (and results being written). */
const CACHE_FILE = /(^verdicts\/(\d+-\d+-[^/]+-\d+|merged-[0-9a-f-]{36})\.log(\.tmp)?$)|(^images\/[0-9a-f]{24}\/[0-9a-f]{2}\/[0-9a-f]{64}\.(bin|rej)(\.[^/]+\.tmp)?$)/;

/** Every file of the cache with its size and when it was last used: only files of its own folders and names. */
async function entries(dir: string): Promise<{ file: string; size: number; used: number }[]> {
  const found: { file: string; size: number; used: number }[] = [];
  for (const folder of CACHE_FOLDERS) {
    if (!(await ownFolder(path.join(dir, folder)))) continue;
    for (const entry of await readdir(path.join(dir, folder), { recursive: true, withFileTypes: true }).catch(() => [])) {
      if (!entry.isFile()) continue;
      const file = path.join(entry.parentPath, entry.name);
      if (!CACHE_FILE.test(path.relative(dir, file).split(path.sep).join('/'))) continue;
      const info = await stat(file).catch(() => null);
      if (info !== null) found.push({ file, size: info.size, used: info.mtimeMs });
    }
  }
  return found;
}

/**
 * Marks `dir` as a cache (CACHEDIR.TAG, which backup tools know to skip): what `openImageStore` makes, and what
 * `clearImageStore` looks for before it removes anything.
 */
const TAG = 'CACHEDIR.TAG';
const TAG_TEXT = 'Signature: 8a477f597d28d172789f06886806bc55\n# The cache of image work of rlaif-v (see its README, "Re-runs").\n';

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
  const all = await entries(dir);
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
  const verdicts = new Set<string>();
  for (const file of all.filter((entry) => entry.file.endsWith('.log'))) {
    try {
      for await (const line of createInterface({ input: createReadStream(file.file), crlfDelay: Infinity })) {
        const record = line.split('\t')[0] ?? '';
        if (parseVerdictLine(line, record.split(' ')[0] ?? '') !== null) verdicts.add(record);
      }
    } catch {
      // gone meanwhile
    }
  }
  return {
    dir,
    bytes: all.reduce((sum, entry) => sum + entry.size, 0),
    verdicts: verdicts.size,
    reencoded: all.filter((entry) => entry.file.endsWith('.bin')).length,
    rejected: all.filter((entry) => entry.file.endsWith('.rej')).length,
  };
}

/**
 * Empties the cache: its own folders only (the directory, and anything else in it, stay).
 *
 * @throws {OutputError} `ERR_CACHE_NOT_OURS` (exit 2) when `dir` holds folders of the cache's names but is not marked as a cache (CACHEDIR.TAG).
 */
export async function clearImageStore(dir: string): Promise<void> {
  if ((await stat(dir).catch(() => null)) === null) return;
  if ((await markedAs(dir, 'cache')) === null) {
    throw new OutputError(
      'ERR_CACHE_NOT_OURS',
      `${dir} is not rlaif-v's cache (it has no ${MARKER_FILE} saying so): nothing in it was removed. Remove it yourself if it is an old cache of this tool.`,
    );
  }
  // Only the cache's own files, by their names and places; then the folders they leave empty.
  for (const entry of await entries(dir)) await rm(entry.file, { force: true }).catch(() => undefined);
  for (const folder of CACHE_FOLDERS) if (await ownFolder(path.join(dir, folder))) await removeEmptyFolders(path.join(dir, folder));
}

/** Removes `dir` and the folders in it that hold nothing (a folder with anything in it stays, and its parents). */
async function removeEmptyFolders(dir: string): Promise<void> {
  const children = await readdir(dir, { withFileTypes: true }).catch(() => null);
  if (children === null) return;
  for (const child of children) if (child.isDirectory()) await removeEmptyFolders(path.join(dir, child.name));
  if ((await readdir(dir).catch(() => ['?'])).length === 0) await rmdir(dir).catch(() => undefined);
}

/**
 * Checks that `dir` can be this tool's cache without touching anything: it is missing, empty, or marked as a cache by
 * this tool; and it is apart from the input.
 *
 * @throws {OutputError} (exit 2) `ERR_CACHE_NOT_OURS` for a directory of other files; `ERR_OUTPUT_OVERLAPS_INPUT` for a
 * cache that is, holds or lies in an input.
 */
export async function checkCacheDir(dir: string, inputs: readonly string[], output: string): Promise<void> {
  await checkApartFromInputs([{ path: dir, what: 'The cache (RLAIF_V_CACHE)' }], inputs);
  for (const place of [output, `${output}.partial`]) {
    if (await overlaps(dir, place)) {
      throw new OutputError(
        'ERR_CACHE_OVERLAPS_OUTPUT',
        `The cache (RLAIF_V_CACHE) ${dir} and ${place} are one inside the other: the cache would be published, or removed with an output it replaces. Keep them apart.`,
      );
    }
  }
  if ((await markedAs(dir, 'cache')) !== null) return;
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? [] : null));
  if (names !== null && names.length === 0) return;
  if (await isOlderCache(dir)) return;
  throw cacheNotOurs(dir);
}

/** Where the cache's folders and files may be, relative to it (a folder of images of a policy, then of a key's first byte). */
const CACHE_FOLDER = /^(verdicts|images|images\/[0-9a-f]{24}|images\/[0-9a-f]{24}\/[0-9a-f]{2})$/;

/**
 * Whether `dir` is a cache an older version of this tool made, before markers: its CACHEDIR.TAG is the one this tool
 * writes, and it holds nothing else than what the cache itself writes (its folders and the files of its names; no
 * link). Such a directory holds nothing of anyone else's, and is taken as the cache (and marked so).
 */
async function isOlderCache(dir: string): Promise<boolean> {
  if ((await readFile(path.join(dir, TAG), 'utf8').catch(() => '')) !== TAG_TEXT) return false;
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => null);
  if (entries === null) return false;
  return entries.every((entry) => {
    const relative = path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
    if (entry.isDirectory()) return CACHE_FOLDER.test(relative);
    return entry.isFile() && (relative === TAG || CACHE_FILE.test(relative));
  });
}

function cacheNotOurs(dir: string): OutputError {
  return new OutputError(
    'ERR_CACHE_NOT_OURS',
    `The cache directory ${dir} holds files that are not rlaif-v's cache (it has no ${MARKER_FILE} saying so), so it is neither ` +
      'used nor changed. Point RLAIF_V_CACHE at a new or empty directory, or run with --no-cache.',
  );
}

/**
 * Makes `dir` the cache, or finds it made: missing, it is made (with its parents); empty, it is taken; either way it is
 * marked as this tool's cache and tagged (CACHEDIR.TAG, which backup tools skip). A directory of other files is never
 * used nor tagged.
 *
 * @throws {OutputError} `ERR_CACHE_NOT_OURS` for a directory of other files.
 */
async function ownCacheDir(dir: string): Promise<void> {
  if ((await markedAs(dir, 'cache')) !== null) return;
  await makeDirectory(dir, 'the cache');
  if ((await readdir(dir)).some((name) => !name.startsWith(MARKER_FILE)) && !(await isOlderCache(dir))) throw cacheNotOurs(dir);
  try {
    await createMarker(dir, 'cache');
  } catch (error) {
    // Another run made it the cache a moment before.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || (await markedAs(dir, 'cache')) === null) throw error;
  }
  await writeFile(path.join(dir, TAG), TAG_TEXT).catch(() => undefined);
}
