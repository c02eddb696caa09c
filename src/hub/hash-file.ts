import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Git's object hash of a blob of `size` bytes, before its content is fed in: what the Hub gives regular files as oid. */
export function gitBlobHash(size: number): Hash {
  return createHash('sha1').update(`blob ${size}\0`);
}

/** Feeds a file's first `bytes` bytes (default: all of it) into `hash`, streaming, and returns the hash. */
export async function hashFile(hash: Hash, file: string, bytes?: number): Promise<Hash> {
  if (bytes === 0) return hash;
  const range = bytes === undefined ? {} : { start: 0, end: bytes - 1 };
  for await (const chunk of createReadStream(file, { ...range, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash;
}
