import { openAsBlob } from 'node:fs';
import type { CommitOperation } from '@huggingface/hub';
import type { RepoFile } from './plan-push.js';

/** Xet chunks are at most 128 KiB: a file's first chunk is fixed by its first 128 KiB. */
const HEAD_BYTES = 128 * 1024;

/** How a push reads from the repo it pushes to. */
export interface RepoAccess {
  repoId: string;
  hubUrl: string;
  accessToken: string;
  fetch: typeof fetch;
  signal?: AbortSignal | undefined;
}

const SHARD_NAME = /^data\/(.+)-(\d+)-of-(\d+)\.parquet$/;

/**
 * The file of the repo that a new data file most likely shares content with, among those the repo stores with Xet:
 * the one at the same path, else the one of the same split at the same relative position (shards are contiguous
 * runs of rows, so shard i of n covers about the rows of shard i·m/n of m). Undefined when there is none.
 */
export function counterpartPath(filePath: string, remote: Map<string, RepoFile>): string | undefined {
  if (remote.get(filePath)?.xet !== undefined) return filePath;
  const name = SHARD_NAME.exec(filePath);
  if (name === null) return undefined;
  const [, split, index, count] = name;
  const candidates = [...remote.entries()]
    .filter(([other, file]) => file.xet !== undefined && SHARD_NAME.exec(other)?.[1] === split)
    .map(([other]) => other)
    .sort();
  if (candidates.length === 0) return undefined;
  return candidates[Math.min(candidates.length - 1, Math.floor((Number(index) * candidates.length) / Number(count)))];
}

/** The first HEAD_BYTES of a file of the repo at main, or null when the Hub does not give them. */
async function readHead(access: RepoAccess, filePath: string): Promise<Blob | null> {
  const url = `${access.hubUrl}/datasets/${access.repoId}/resolve/main/${filePath.split('/').map(encodeURIComponent).join('/')}`;
  const response = await access.fetch(url, {
    headers: { Authorization: `Bearer ${access.accessToken}`, Range: `bytes=0-${HEAD_BYTES - 1}` },
    ...(access.signal === undefined ? {} : { signal: access.signal }),
  });
  if (!response.ok || response.body === null) {
    await response.body?.cancel().catch(() => undefined);
    return null;
  }
  // A server that ignores Range sends the whole file: take the head and stop reading.
  const parts: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  while (length < HEAD_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    length += value.byteLength;
  }
  await reader.cancel().catch(() => undefined);
  return new Blob(parts).slice(0, HEAD_BYTES);
}

/**
 * The commit operation that uploads a data file. Where the repo stores an earlier version of it with Xet (see
 * {@link counterpartPath}), an `edit` of that version replaced whole by the new file: its content is the new file,
 * byte for byte, but `@huggingface/hub` then asks the Hub about the earlier version's first chunk and learns every
 * chunk uploaded with it, so the new file's unchanged chunks (images keep theirs when rows move) are not sent
 * again. Without it, the library asks only about each new file's own first chunk, which a changed first row group
 * changes: a re-push sent nearly everything. Otherwise a plain upload of the file.
 */
export async function uploadOperation(file: { path: string; file: string }, remote: Map<string, RepoFile>, access: RepoAccess): Promise<CommitOperation> {
  const content = await openAsBlob(file.file);
  const earlier = counterpartPath(file.path, remote);
  const head = earlier === undefined ? null : await readHead(access, earlier);
  if (head === null) return { operation: 'addOrUpdate', path: file.path, content };
  return { operation: 'edit', path: file.path, originalContent: head, edits: [{ content, start: 0, end: head.size }] };
}
