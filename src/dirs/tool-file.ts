import { randomUUID } from 'node:crypto';

/** The small files of the tool's own in its directories (markers, locks, checkpoints, manifests): how they are replaced and read. */
import { lstat, readFile, rename, rm, writeFile } from 'node:fs/promises';

/**
 * Replaces `file` with `content` in one step: written to a new file beside it (a random name, created exclusively, so
 * never through a link someone left in its place), then renamed over it. A crash leaves the old file or the new.
 */
export async function replaceFile(file: string, content: string): Promise<void> {
  const temp = `${file}.${randomUUID()}.tmp`;
  try {
    await writeFile(temp, content, { flag: 'wx' });
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * The text of `file` when it is a regular file of at most `maxBytes`: never read through a link someone left in its
 * place, nor a pipe (which would block), nor a huge file. Null otherwise, or when there is none.
 */
export async function readSmallFile(file: string, maxBytes: number): Promise<string | null> {
  const info = await lstat(file).catch(() => null);
  if (info === null || !info.isFile() || info.size > maxBytes) return null;
  return readFile(file, 'utf8').catch(() => null);
}
