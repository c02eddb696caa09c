import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { OutputError } from '../errors.js';
import { MARKER_FILE, markedAs } from '../dirs/tool-marker.js';
import { CACHE_FOLDERS, ownFolder, storeEntries } from './image-store-dir.js';

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
  for (const entry of await storeEntries(dir)) await rm(entry.file, { force: true }).catch(() => undefined);
  for (const folder of CACHE_FOLDERS) if (await ownFolder(path.join(dir, folder))) await removeEmptyFolders(path.join(dir, folder));
}

/** Removes `dir` and the folders in it that hold nothing (a folder with anything in it stays, and its parents). */
async function removeEmptyFolders(dir: string): Promise<void> {
  const children = await readdir(dir, { withFileTypes: true }).catch(() => null);
  if (children === null) return;
  for (const child of children) if (child.isDirectory()) await removeEmptyFolders(path.join(dir, child.name));
  if ((await readdir(dir).catch(() => ['?'])).length === 0) await rmdir(dir).catch(() => undefined);
}
