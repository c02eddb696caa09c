import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { packageInfo } from '../util/package-info.js';
import type { ImagePolicy } from './image-policy.js';
import type { ImageStoreSettings } from './image-store.js';
import { KeptTable, keyWords } from './shared-images.js';
import { parseVerdictLine } from './image-store.js';
import { JPEG_CHECK_WASM, VERDICT_MODULES } from '../util/paths.js';
import { cacheHost, logFiles, ownCacheDir } from './image-store-dir.js';
import { buildPackedIndex } from './packed-index.js';

/** Bumped whenever what a verdict means changes (the checks, the normalizing): older entries are then not used. */
const CACHE_FORMAT = 2;

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
 * and its libraries' versions (`versions`: sharp.versions), libjpeg-turbo's module, Node's zlib (which checks PNGs) and the CPU's kind; the
 * tool's version and the cache's format. Any of them changed, nothing cached before is used.
 */
export function policyKey(policy: ImagePolicy, versions: Record<string, string | undefined>): string {
  const identity = {
    format: CACHE_FORMAT,
    tool: `${packageInfo.name} ${packageInfo.version}`,
    code: verdictCodeHash(),
    versions,
    // The re-encoder of plain JPEGs (pinned in package.json): a new one makes other bytes.
    jpegTurbo: packageInfo.dependencies?.['@julusian/jpeg-turbo'] ?? null,
    zlib: process.versions.zlib,
    arch: process.arch,
    policy,
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 24);
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

let lastRunTime = 0;

/** The time in a run's id: now, or a millisecond after the last run's of this process (no two runs share an id). */
function runTime(): number {
  lastRunTime = Math.max(Date.now(), lastRunTime + 1);
  return lastRunTime;
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
  const own = await ownPlaces(dir, key);
  const { index: packed } = buildPackedIndex(own ? path.join(dir, 'images', key) : null);
  return { settings: { dir, policy: key, run: `${process.pid}-${runTime()}-${cacheHost()}`, kept, packed, writable: own }, verdicts: keys.size };
}

/**
 * Whether the places of the cache a run reads packs from and writes to are its own: missing, or folders (a link in the
 * place of one leads out of the cache, where its bound and `cache clear` never go: the run then neither reads packs
 * nor writes anything).
 */
async function ownPlaces(dir: string, policy: string): Promise<boolean> {
  for (const folder of ['verdicts', 'images', path.join('images', policy)]) {
    const info = await lstat(path.join(dir, folder)).catch(() => null);
    if (info !== null && !info.isDirectory()) return false;
  }
  return true;
}
