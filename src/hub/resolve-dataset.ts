import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { datasetInfo, downloadFile, HubApiError, listFiles, type ListFileEntry } from '@huggingface/hub';
import { HubError } from '../errors.js';
import { makeDirectory } from '../dirs/staging.js';
import { repoFolder, sizeOf } from './hf-cache.js';
import { fromHubFailure, loginHint } from './hub-error.js';
import type { HubSettings } from './hub-settings.js';
import { retryFetch, type RetryEvent } from './retry-fetch.js';

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

/** A dataset on the Hub at one revision: the commit it names and the parquet files there. */
export interface DatasetSource {
  repo: string;
  revision: string;
  /** The commit `revision` resolved to: every file is read at this commit. */
  commit: string;
  files: RemoteFile[];
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
