import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { OutputError } from '../errors.js';
import { checkApartFromInputs, overlaps } from '../dirs/output-dir.js';
import { makeDirectory } from '../dirs/staging.js';
import { createMarker, MARKER_FILE, markedAs } from '../dirs/tool-marker.js';
import { parseVerdictLine } from './image-store.js';
import { readPackIndex } from './image-pack.js';

/**
 * The persistent cache of image work as a whole (image-store.ts is what a worker does with it): where it is,
 * the verdicts of earlier runs loaded for a new one, its size kept under a bound, and `rlaif-v cache info|clear`.
 * Here its layout on disk: where it is, its folders and files, and whose it is; the rest in open-image-store.ts,
 * trim-image-store.ts and clear-image-store.ts.
 */

/** `$RLAIF_V_CACHE`, else `$XDG_CACHE_HOME/rlaif-v`, else `~/.cache/rlaif-v`. */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RLAIF_V_CACHE !== undefined && env.RLAIF_V_CACHE !== '') return path.resolve(env.RLAIF_V_CACHE);
  if (env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '') return path.join(path.resolve(env.XDG_CACHE_HOME), 'rlaif-v');
  return path.join(homedir(), '.cache', 'rlaif-v');
}

/** The names of the logs of verdicts the cache writes: a run's and thread's, or a merge of them. */
const LOG_NAME = /^(\d+-\d+-[^/]+-\d+|merged-[0-9a-f-]{36})\.log$/;

/** Whether `folder` of the cache is a folder of its own (a link there is followed by nothing of the cache). */
export async function ownFolder(folder: string): Promise<boolean> {
  return (await lstat(folder).catch(() => null))?.isDirectory() === true;
}

/** The logs of verdicts in the cache, by their names (none when its folder of verdicts is not a folder of its own). */
export async function logFiles(dir: string): Promise<string[]> {
  if (!(await ownFolder(path.join(dir, 'verdicts')))) return [];
  const names = await readdir(path.join(dir, 'verdicts')).catch(() => [] as string[]);
  return names.filter((name) => LOG_NAME.test(name)).map((name) => path.join(dir, 'verdicts', name));
}

/** The folders of the cache: nothing else in its directory is ever counted, trimmed or cleared. */
export const CACHE_FOLDERS = ['verdicts', 'images'] as const;

/** What the cache's files were called before packs (results a file each). */
const LEGACY_FILE = /(^verdicts\/(\d+-\d+-[^/]+-\d+|merged-[0-9a-f-]{36})\.log(\.tmp)?$)|(^images\/[0-9a-f]{24}\/[0-9a-f]{2}\/[0-9a-f]{64}\.(bin|rej)(\.[^/]+\.tmp)?$)/;

/** What the cache's files are called: those, and the packs of results with their indexes. */
const CACHE_FILE = new RegExp(`${LEGACY_FILE.source}|(^images\\/[0-9a-f]{24}\\/\\d+-\\d+-[^/]+-\\d+-\\d+\\.(pack|idx)$)`);

/** This host's name in the names of the cache's files (never empty: the names are parsed by their dashes). */
export function cacheHost(): string {
  return hostname() || 'localhost';
}

/** Every file of the cache with its size and when it was last used: only files of its own folders and names. */
export async function storeEntries(dir: string): Promise<{ file: string; size: number; used: number }[]> {
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
  const all = await storeEntries(dir);
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
  const packed = { bin: new Set<string>(), rej: new Set<string>() };
  for (const index of all.filter((entry) => entry.file.endsWith('.idx'))) {
    readPackIndex(index.file, (key, entry) => packed[entry.kind].add(`${path.basename(path.dirname(index.file))} ${key}`));
  }
  return {
    dir,
    bytes: all.reduce((sum, entry) => sum + entry.size, 0),
    verdicts: verdicts.size,
    reencoded: packed.bin.size + all.filter((entry) => entry.file.endsWith('.bin')).length,
    rejected: packed.rej.size + all.filter((entry) => entry.file.endsWith('.rej')).length,
  };
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
export async function ownCacheDir(dir: string): Promise<void> {
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
