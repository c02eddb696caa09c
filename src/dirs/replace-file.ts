import { randomUUID } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';

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
