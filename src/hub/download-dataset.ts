import { createHash, type Hash } from 'node:crypto';
import { open, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { datasetInfo, downloadFile, downloadFileToCacheDir, HubApiError, listFiles, type ListFileEntry } from '@huggingface/hub';
import { HubError } from '../errors.js';
import { acquireLock } from '../dirs/file-lock.js';
import { makeDirectory } from '../dirs/staging.js';
import { gitBlobHash, hashFile } from './hash-file.js';
import { fromHubFailure, loginHint } from './hub-error.js';
import type { HubSettings } from './hub-settings.js';
import { backoffMs, retryFetch, waitBeforeRetry, type RetryEvent } from './retry-fetch.js';

/** One parquet file of a dataset on the Hub, and where it lives in the local Hugging Face cache. */
export interface RemoteFile {
  /** Path in the repo. */
  path: string;
  size: number;
  /** sha256 for LFS files, the git object id otherwise: the blob's name in the cache, checked after download. */
  etag: string;
  /** `snapshots/<commit>/<path>`: the path the file is read from once downloaded. */
  localPath: string;
  /** `blobs/<etag>`, what the snapshot path links to. */
  blobPath: string;
  /** Already in the cache (downloaded before, by this tool or by Python's huggingface_hub). */
  cached: boolean;
}

export interface DatasetSource {
  repo: string;
  revision: string;
  /** The commit `revision` resolved to: every file is read at this commit. */
  commit: string;
  files: RemoteFile[];
}

export interface DownloadProgress {
  /** Files in all, and how many are in the cache. */
  files: number;
  filesDone: number;
  /** Bytes in the cache (cached files included) and in all. */
  bytes: number;
  totalBytes: number;
  /** Bytes fetched over the network in this run: the basis of a rate. */
  fetched: number;
  /** The file being fetched, or null. */
  current: string | null;
}

/** Download progress, and retries of Hub requests (told as they happen, so a slow Hub is never silent). */
export type DownloadEvent = { type: 'download'; progress: DownloadProgress } | { type: 'retry'; retry: RetryEvent };

/** Ordinary consecutive failures of one file's transfer (dropped connections) before the download gives up. */
const TRANSFER_ATTEMPTS = 8;

function repoFolder(repo: string): string {
  return `datasets--${repo.split('/').join('--')}`;
}

async function sizeOf(file: string): Promise<number | null> {
  return stat(file).then(
    (info) => info.size,
    () => null,
  );
}

/**
 * Finds a dataset's parquet files at a revision, and which of them the local cache already holds.
 *
 * @throws {HubError} `ERR_HUB_REPO_NOT_FOUND`, `ERR_HUB_REVISION_NOT_FOUND`, `ERR_HUB_NO_PARQUET`, or another Hub error.
 */
export async function resolveDataset(params: { repo: string; revision?: string; settings: HubSettings; onRetry?: (event: RetryEvent) => void }): Promise<DatasetSource> {
  const { repo, settings } = params;
  const revision = params.revision ?? 'main';
  if (settings.offline) return resolveFromCache(repo, revision, settings);
  const fetch = retryFetch(settings.fetch, { ...settings.retry, onRetry: params.onRetry ?? settings.retry.onRetry });
  const credentials = { hubUrl: settings.hubUrl, accessToken: settings.accessToken, fetch };
  let commit: string;
  try {
    const info = await datasetInfo<'sha'>({ name: repo, revision, additionalFields: ['sha'], ...credentials });
    commit = info.sha;
  } catch (error) {
    if (!(error instanceof HubApiError) || error.statusCode !== 404) throw fromHubFailure(error, `Dataset ${repo}`, settings);
    const repoExists = await datasetInfo({ name: repo, ...credentials }).then(
      () => true,
      () => false,
    );
    if (repoExists) {
      throw new HubError('ERR_HUB_REVISION_NOT_FOUND', `Dataset ${repo} has no revision ${JSON.stringify(revision)} (branch, tag or commit). Check --revision.`, { cause: error, status: 404, exitCode: 2 });
    }
    throw new HubError('ERR_HUB_REPO_NOT_FOUND', `Dataset ${repo} was not found on ${settings.hubUrl}. Check --dataset (owner/name).${loginHint(settings)}`, {
      cause: error,
      status: 404,
      exitCode: 2,
    });
  }
  const entries: ListFileEntry[] = [];
  try {
    for await (const entry of listFiles({ repo: { type: 'dataset', name: repo }, revision: commit, recursive: true, ...credentials })) {
      if (entry.type === 'file' && entry.path.endsWith('.parquet')) entries.push(entry);
    }
  } catch (error) {
    throw fromHubFailure(error, `Listing the files of ${repo}`, settings);
  }
  if (entries.length === 0) {
    throw new HubError('ERR_HUB_NO_PARQUET', `Dataset ${repo} at ${revision} holds no .parquet files to convert.`, { exitCode: 2 });
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const storage = path.join(settings.cacheDir, repoFolder(repo));
  const files: RemoteFile[] = [];
  for (const entry of entries) {
    const etag = entry.lfs?.oid ?? entry.xetHash ?? entry.oid;
    if (etag === undefined) throw new HubError('ERR_HUB_REQUEST', `${repo}/${entry.path}: the Hub's listing gives no hash for the file.`);
    const localPath = path.join(storage, 'snapshots', commit, entry.path);
    const blobPath = path.join(storage, 'blobs', etag);
    const cached = (await sizeOf(localPath)) === entry.size || (await sizeOf(blobPath)) === entry.size;
    files.push({ path: entry.path, size: entry.size, etag, localPath, blobPath, cached });
  }
  if (revision !== commit) {
    // As huggingface_hub does: refs/<revision> names the commit, so later runs of either tool find the snapshot.
    await makeDirectory(path.join(storage, 'refs', path.dirname(revision)), 'the Hugging Face cache');
    await writeFile(path.join(storage, 'refs', revision), commit);
  }
  return { repo, revision, commit, files };
}

/**
 * The dataset as the cache holds it, for `HF_HUB_OFFLINE`: `refs/<revision>` names the commit (or the revision is
 * one), and the snapshot's parquet files link to their blobs.
 */
async function resolveFromCache(repo: string, revision: string, settings: HubSettings): Promise<DatasetSource> {
  const storage = path.join(settings.cacheDir, repoFolder(repo));
  const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : (await readFile(path.join(storage, 'refs', revision), 'utf8').catch(() => '')).trim();
  const snapshot = path.join(storage, 'snapshots', commit);
  const entries = commit === '' ? [] : await readdir(snapshot, { recursive: true, withFileTypes: true }).catch(() => []);
  const files: RemoteFile[] = [];
  for (const entry of entries.filter((item) => item.name.endsWith('.parquet')).sort((a, b) => path.join(a.parentPath, a.name).localeCompare(path.join(b.parentPath, b.name)))) {
    const localPath = path.join(entry.parentPath, entry.name);
    const size = await sizeOf(localPath);
    const target = await readlink(localPath).catch(() => null);
    const blobPath = target === null ? localPath : path.resolve(path.dirname(localPath), target);
    if (size === null) {
      // A snapshot link whose blob is gone: skipping it would convert the dataset without that file.
      throw new HubError(
        'ERR_HUB_CACHE_BROKEN',
        `HF_HUB_OFFLINE is set, and the Hugging Face cache has ${repo}/${path.relative(snapshot, localPath)} at ${revision} but not its ` +
          `content (${blobPath} is missing). Unset HF_HUB_OFFLINE to download it again.`,
        { exitCode: 2 },
      );
    }
    files.push({ path: path.relative(snapshot, localPath).split(path.sep).join('/'), size, etag: path.basename(blobPath), localPath, blobPath, cached: true });
  }
  if (files.length === 0) {
    throw new HubError(
      'ERR_HUB_OFFLINE_MISSING',
      `HF_HUB_OFFLINE is set, and the Hugging Face cache (${settings.cacheDir}) holds no parquet files of ${repo} at ${revision}. ` +
        'Unset HF_HUB_OFFLINE to download them.',
      { exitCode: 2 },
    );
  }
  return { repo, revision, commit, files };
}

/** A lazy Blob of a file on the Hub: footers are read from it by range requests, before the file is downloaded. */
export async function remoteBlob(source: DatasetSource, file: RemoteFile, settings: HubSettings, onRetry?: (event: RetryEvent) => void): Promise<Blob> {
  const fetch = retryFetch(settings.fetch, { ...settings.retry, onRetry: onRetry ?? settings.retry.onRetry });
  try {
    const blob = await downloadFile({
      repo: { type: 'dataset', name: source.repo },
      path: file.path,
      revision: source.commit,
      hubUrl: settings.hubUrl,
      accessToken: settings.accessToken,
      fetch,
      // Plain range requests on the resolve URL (redirected to the CDN), the same path the download itself takes,
      // rather than the xet reconstruction protocol.
      xet: false,
    });
    if (blob === null) throw new HubError('ERR_HUB_FILE_NOT_FOUND', `${source.repo}/${file.path} is listed but cannot be fetched.`);
    return blob;
  } catch (error) {
    throw fromHubFailure(error, `${source.repo}/${file.path}`, settings);
  }
}

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

/**
 * Downloads a dataset's files one after another in the background, in order, so conversion can start on the first
 * file while later ones download. `ready(i)` resolves when file i is in the cache; `changed()` when progress moves.
 */
export class DatasetDownloads {
  readonly #source: DatasetSource;
  readonly #settings: HubSettings;
  readonly #controller = new AbortController();
  readonly #ready: Promise<void>[] = [];
  readonly #progress: DownloadProgress;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  #wake: (() => void) | null = null;
  #lastTick = 0;
  #doneBytes = 0;

  /**
   * `onRetry` hears of every retried request and broken-off transfer. `wanted` picks the files to download (by index;
   * default all): a part of a multi-machine run fetches only the files its rows are in.
   */
  constructor(
    source: DatasetSource,
    settings: HubSettings,
    options: { signal?: AbortSignal | undefined; onRetry?: (event: RetryEvent) => void; wanted?: (index: number) => boolean } = {},
  ) {
    const signal = options.signal;
    this.#source = source;
    this.#settings = settings;
    this.#onRetry = options.onRetry;
    signal?.addEventListener('abort', () => this.#controller.abort(signal.reason), { once: true });
    const wanted = source.files.filter((_file, index) => options.wanted?.(index) ?? true);
    const cachedBytes = wanted.filter((file) => file.cached).reduce((sum, file) => sum + file.size, 0);
    this.#progress = {
      files: wanted.length,
      filesDone: wanted.filter((file) => file.cached).length,
      bytes: cachedBytes,
      totalBytes: wanted.reduce((sum, file) => sum + file.size, 0),
      fetched: 0,
      current: null,
    };
    this.#doneBytes = cachedBytes;
    let previous: Promise<void> = Promise.resolve();
    for (const file of source.files) {
      if (!wanted.includes(file)) {
        const skipped = Promise.reject(new Error(`${file.path} is not downloaded by this run: it holds no row of its part`));
        skipped.catch(() => undefined);
        this.#ready.push(skipped);
        continue;
      }
      const ready = previous.then(() => this.#fetch(file));
      // Failures surface where the file is awaited; until then they must not count as unhandled.
      ready.catch(() => undefined);
      this.#ready.push(ready);
      previous = ready;
    }
  }

  /** Resolves when file `index` can be read from its `localPath`. */
  ready(index: number): Promise<void> {
    return this.#ready[index] ?? Promise.reject(new RangeError(`no file ${index}`));
  }

  /** Resolves at the next progress report (at most every 250 ms) or retry notice. */
  changed(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /** The latest progress, as an event. */
  event(): DownloadEvent {
    return { type: 'download', progress: { ...this.#progress } };
  }

  get progress(): DownloadProgress {
    return { ...this.#progress };
  }

  /** Every file is in the cache. */
  get finished(): boolean {
    return this.#progress.filesDone === this.#progress.files;
  }

  /** Stops the downloads; a partial file stays in the cache as `.incomplete`, to be resumed by the next run. */
  abort(): void {
    this.#controller.abort();
  }

  #tick(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.#lastTick < 250) return;
    this.#lastTick = now;
    this.#wake?.();
    this.#wake = null;
  }

  async #fetch(file: RemoteFile): Promise<void> {
    if (file.cached) {
      // The snapshot link may be missing when only the blob is cached (fetched at another commit): make it.
      if ((await sizeOf(file.localPath)) !== file.size) await downloadToCache({ source: this.#source, file, settings: this.#settings, signal: this.#controller.signal });
      return;
    }
    this.#progress.current = file.path;
    let startedAt = -1;
    let last = 0;
    await downloadToCache({
      source: this.#source,
      file,
      settings: this.#settings,
      signal: this.#controller.signal,
      onBytes: (bytes) => {
        if (startedAt < 0) startedAt = bytes;
        if (bytes > last) this.#progress.fetched += bytes - Math.max(last, startedAt);
        last = Math.max(last, bytes);
        this.#progress.bytes = this.#doneBytes + bytes;
        this.#tick(false);
      },
      onRetry: (retry) => {
        this.#onRetry?.(retry);
        this.#tick(true);
      },
    });
    this.#doneBytes += file.size;
    this.#progress.bytes = this.#doneBytes;
    this.#progress.filesDone++;
    this.#progress.current = null;
    this.#tick(true);
  }
}
