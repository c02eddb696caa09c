import { openAsBlob } from 'node:fs';
import type { CommitOperation } from '@huggingface/hub';
import type { RepoFile } from './plan-push.js';
import { retryFetch, type RetryOptions } from './retry-fetch.js';

/** Xet chunks are at most 128 KiB: a file's first chunk is fixed by its first 128 KiB. */
const HEAD_BYTES = 128 * 1024;

/** How long the read of an earlier version's head may take, its retry included: it only saves upload. */
export const HEAD_TIMEOUT_MS = 10_000;

/** How a push reads from the repo it pushes to. */
export interface RepoAccess {
  repoId: string;
  hubUrl: string;
  accessToken: string;
  /** A fetch that does not retry: the read of an earlier version's head retries once, with `retry`'s backoff. */
  fetch: typeof fetch;
  /** The push's retry options (backoff, `sleep`, `onRetry`); `retries` is taken as 1 whatever it says. */
  retry?: RetryOptions | undefined;
  /** The push's signal: its abort is the one failure of the read that is thrown. */
  signal?: AbortSignal | undefined;
  /** Longest wait for the head of an earlier version, retry included. Default {@link HEAD_TIMEOUT_MS}. */
  headTimeoutMs?: number | undefined;
  /** Told when that read failed, so the new file goes up whole: the earlier version's path, and why. */
  onHeadFailure?: ((filePath: string, reason: string) => void) | undefined;
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

/**
 * The first HEAD_BYTES of a file of the repo at main, or null when the Hub does not give them: the read only primes
 * deduplication, so a status, a dropped connection or a read over `headTimeoutMs` means a plain upload of the whole
 * file (one retry, not the push's minute of them), never a failed push. Only the push's own abort is thrown.
 */
async function readHead(access: RepoAccess, filePath: string): Promise<Blob | null> {
  const timeout = AbortSignal.timeout(access.headTimeoutMs ?? HEAD_TIMEOUT_MS);
  const signal = access.signal === undefined ? timeout : AbortSignal.any([access.signal, timeout]);
  let reason: string;
  try {
    const head = await fetchHead(access, filePath, signal);
    if (typeof head !== 'string') return head;
    reason = head;
  } catch (error) {
    access.signal?.throwIfAborted();
    reason = timeout.aborted ? `no answer in ${access.headTimeoutMs ?? HEAD_TIMEOUT_MS} ms` : error instanceof Error ? error.message : String(error);
  }
  access.onHeadFailure?.(filePath, reason);
  return null;
}

/** The head of `filePath` (null for an empty file: nothing to learn from), or why the Hub did not give it. */
async function fetchHead(access: RepoAccess, filePath: string, signal: AbortSignal): Promise<Blob | null | string> {
  const url = `${access.hubUrl}/datasets/${access.repoId}/resolve/main/${filePath.split('/').map(encodeURIComponent).join('/')}`;
  const response = await retryFetch(access.fetch, { ...access.retry, retries: 1 })(url, {
    headers: { Authorization: `Bearer ${access.accessToken}`, Range: `bytes=0-${HEAD_BYTES - 1}` },
    signal,
  });
  // 416: an empty file has no byte 0.
  if (response.status === 416) return null;
  if (!response.ok || response.body === null) {
    await response.body?.cancel().catch(() => undefined);
    return `${response.status} ${response.statusText}`.trim();
  }
  // A server that ignores Range sends the whole file: take the head and stop reading.
  const parts: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  try {
    while (length < HEAD_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      length += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return length === 0 ? null : new Blob(parts).slice(0, HEAD_BYTES);
}

/**
 * The commit operation that uploads a data file. Where the repo stores an earlier version of it with Xet (see
 * {@link counterpartPath}), an `edit` of that version replaced whole by the new file: its content is the new file,
 * byte for byte, but `@huggingface/hub` then asks the Hub about the earlier version's first chunk and learns every
 * chunk uploaded with it, so the new file's unchanged chunks (images keep theirs when rows move) are not sent
 * again. Without it, the library asks only about each new file's own first chunk, which a changed first row group
 * changes: a re-push sent nearly everything. Otherwise a plain upload of the file.
 *
 * That query is an internal rule of `@huggingface/hub`, not its API (2.17: `createXorbs` asks about the first chunk
 * of an edit's original when the first edit starts within it): package.json pins the library to ~2.17.5 for it, and
 * the re-push tests of test/hub/push-xet.test.ts (at most 10% sent again) fail if a version drops or changes it.
 */
export async function uploadOperation(file: { path: string; file: string }, remote: Map<string, RepoFile>, access: RepoAccess): Promise<CommitOperation> {
  const content = await openAsBlob(file.file);
  const earlier = counterpartPath(file.path, remote);
  const head = earlier === undefined ? null : await readHead(access, earlier);
  if (head === null) return { operation: 'addOrUpdate', path: file.path, content };
  return { operation: 'edit', path: file.path, originalContent: head, edits: [{ content, start: 0, end: head.size }] };
}
