import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { downloadFileToCacheDir } from '@huggingface/hub';
import { HubError } from '../errors.js';
import { acquireLock } from '../dirs/file-lock.js';
import { makeDirectory } from '../dirs/staging.js';
import { gitBlobHash, hashFile } from './hash-file.js';
import { sizeOf } from './hf-cache.js';
import { fromHubFailure } from './hub-error.js';
import type { HubSettings } from './hub-settings.js';
import type { DatasetSource, RemoteFile } from './resolve-dataset.js';
import { backoffMs, retryFetch, waitBeforeRetry, type RetryEvent } from './retry-fetch.js';

/** Ordinary consecutive failures of one file's transfer (dropped connections) before the download gives up. */
const TRANSFER_ATTEMPTS = 8;

/** The hash the etag is: sha256 for LFS files (64 hex digits), git's blob sha1 for regular ones (40). */
function etagHash(etag: string, size: number): Hash | null {
  if (/^[0-9a-f]{64}$/.test(etag)) return createHash('sha256');
  if (/^[0-9a-f]{40}$/.test(etag)) return gitBlobHash(size);
  return null;
}

export interface DownloadFileParams {
  source: DatasetSource;
  file: RemoteFile;
  settings: HubSettings;
  /** Bytes of this file in the cache so far, as they arrive. */
  onBytes?: (bytes: number) => void;
  onRetry?: (event: RetryEvent) => void;
  signal?: AbortSignal | undefined;
}

/**
 * Downloads one file into the Hugging Face cache, resuming a `blobs/<etag>.incomplete` left by an earlier run (as
 * huggingface_hub does) and after dropped connections; 429 and 5xx answers are retried with backoff. The size and
 * the etag (sha256) are checked before the blob is put in place; then `downloadFileToCacheDir` links it into the
 * snapshot, so the cache is laid out exactly as Python's huggingface_hub lays it out.
 *
 * @returns the snapshot path of the file.
 * @throws {HubError} `ERR_HUB_DOWNLOAD` when the transfer keeps failing or the bytes do not match the etag.
 */
export async function downloadToCache(params: DownloadFileParams): Promise<string> {
  const { source, file, settings } = params;
  const fetch = retryFetch(settings.fetch, { ...settings.retry, onRetry: params.onRetry ?? settings.retry.onRetry });
  const name = `${source.repo}/${file.path}`;
  if ((await sizeOf(file.blobPath)) !== file.size) {
    await makeDirectory(path.dirname(file.blobPath), 'the Hugging Face cache');
    // Runs sharing the cache (the parts of a multi-machine run, on one node or over a shared filesystem) download a
    // blob one at a time: the others wait, then find it in place.
    const cacheDir = path.dirname(path.dirname(path.dirname(file.blobPath)));
    const locks = path.join(cacheDir, '.locks', path.basename(path.dirname(path.dirname(file.blobPath))));
    await makeDirectory(locks, 'the Hugging Face cache');
    const release = await acquireLock(path.join(locks, `${path.basename(file.blobPath)}.rlaif-v.lock`), { signal: params.signal });
    try {
      if ((await sizeOf(file.blobPath)) !== file.size) await fetchBlob(params, fetch, name);
    } finally {
      await release();
    }
  }
  params.onBytes?.(file.size);
  try {
    // The blob is in place, so this only links snapshots/<commit>/<path> to it, the way Python's cache does.
    return await downloadFileToCacheDir({
      repo: { type: 'dataset', name: source.repo },
      path: file.path,
      revision: source.commit,
      cacheDir: path.dirname(path.dirname(path.dirname(file.blobPath))),
      hubUrl: settings.hubUrl,
      accessToken: settings.accessToken,
      fetch,
    });
  } catch (error) {
    throw fromHubFailure(error, name, settings);
  }
}

/**
 * Fetches a file's blob into the cache: into `<blob>.incomplete` (taking up what an earlier run left there), checked
 * against its size and etag, then moved into place.
 */
async function fetchBlob(params: DownloadFileParams, fetch: typeof globalThis.fetch, name: string): Promise<void> {
  const { file } = params;
  const incomplete = `${file.blobPath}.incomplete`;
  for (let fresh = 0; ; fresh++) {
    await transfer({ ...params, fetch, incomplete, name });
    const have = await sizeOf(incomplete);
    const hash = etagHash(file.etag, file.size);
    if (hash !== null) await hashFile(hash, incomplete, have ?? 0);
    const digest = hash?.digest('hex');
    if (have === file.size && (digest === undefined || digest === file.etag)) break;
    await rm(incomplete, { force: true });
    if (fresh >= 1) {
      throw new HubError(
        'ERR_HUB_DOWNLOAD',
        `${name}: the downloaded bytes (${have ?? 0} bytes, hash ${digest ?? '?'}) do not match the Hub's size ${file.size} and etag ${file.etag}, twice. The file may be changing on the Hub; try again later.`,
      );
    }
  }
  await rename(incomplete, file.blobPath);
}

/** Waits before the next try of a transfer that broke off, and says so as a retry. */
async function pause(params: DownloadFileParams, failures: number, request: string, reason: string): Promise<void> {
  const retry = params.settings.retry;
  const delayMs = backoffMs(retry, failures);
  params.onRetry?.({ attempt: failures, delayMs, status: null, request: request.replace(/\?.*$/, ''), reason });
  await waitBeforeRetry(retry, delayMs, params.signal);
}

/**
 * Fetches what `incomplete` lacks, appending; tries again from where it stopped when the connection drops mid-body
 * (at most TRANSFER_ATTEMPTS times in a row without progress). Connecting is retried by `params.fetch` alone.
 */
async function transfer(params: DownloadFileParams & { fetch: typeof fetch; incomplete: string; name: string }): Promise<void> {
  const { source, file, settings, signal, incomplete, name } = params;
  const url = `${settings.hubUrl}/datasets/${source.repo}/resolve/${source.commit}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
  let failures = 0;
  for (;;) {
    signal?.throwIfAborted();
    let have = (await sizeOf(incomplete)) ?? 0;
    if (have > file.size) {
      await rm(incomplete, { force: true });
      have = 0;
    }
    if (have === file.size) return;
    params.onBytes?.(have);
    const headers: Record<string, string> = {};
    if (settings.accessToken !== undefined) headers.authorization = `Bearer ${settings.accessToken}`;
    if (have > 0) headers.range = `bytes=${have}-`;
    let response: Response;
    try {
      response = await params.fetch(url, { headers, signal: signal ?? null });
    } catch (error) {
      // params.fetch has retried the connection already: one layer of retries, not one inside another.
      if (signal?.aborted === true) throw error;
      throw fromHubFailure(error, name, settings);
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '');
      throw new HubError('ERR_HUB_DOWNLOAD', `${name}: the Hub answered ${response.status} to the download (${text.slice(0, 200)}).`, { status: response.status, url });
    }
    // A server that ignores Range sends the whole file again: start over rather than append it.
    const append = response.status === 206 && have > 0;
    const handle = await open(incomplete, append ? 'a' : 'w');
    let written = append ? have : 0;
    let progressed = false;
    try {
      if (response.body === null) throw new Error('empty body');
      for await (const chunk of response.body) {
        await handle.write(chunk);
        written += chunk.byteLength;
        progressed = true;
        params.onBytes?.(written);
      }
      // A body that ended early without an error (no Content-Length to hold it to) is a break-off too.
      if (written < file.size) throw new Error('the response ended early');
    } catch (error) {
      if (signal?.aborted === true) throw error;
      if (progressed) failures = 0;
      if (++failures >= TRANSFER_ATTEMPTS) throw new HubError('ERR_HUB_DOWNLOAD', `${name}: the download broke off ${failures} times (${(error as Error).message}).`, { cause: error });
      await pause(params, failures, `GET ${url}`, `broke off at ${written} of ${file.size} bytes (${(error as Error).message})`);
      continue;
    } finally {
      await handle.close();
    }
    return;
  }
}
