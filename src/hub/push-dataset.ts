import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { commitIter, createRepo, datasetInfo, HubApiError, listFiles, whoAmI, type CommitOperation } from '@huggingface/hub';
import { cardForRepo } from '../output/load-line.js';
import { fromHubFailure } from './hub-error.js';
import { HubError, InputError, invalidOption } from '../errors.js';
import { gitBlobHash, hashFile } from './hash-file.js';
import { requireToken, withSignal, type HubSettings } from './hub-settings.js';
import { EventQueue } from '../util/event-queue.js';
import { retryFetch, type RetryEvent } from './retry-fetch.js';
import { drain } from '../util/drain.js';

export interface PushOptions {
  /** An output directory of `convert`: `data/*.parquet` and `README.md`. */
  dir: string;
  /** Dataset repo to push to. Default `trl-lib/rlaif-v`, as the Python script. */
  repoId?: string;
  /** Create the repo private when it does not exist. Default false. */
  private?: boolean;
  /** Files per commit: the Hub takes fewer than 100. Default 50. */
  filesPerCommit?: number;
  settings: HubSettings;
  signal?: AbortSignal;
}

export interface PushReport {
  repo: string;
  url: string;
  /** Commits made, in order (none when everything was already there). */
  commits: { oid: string; title: string; files: number }[];
  /** Data files sent in this run, and those the repo already held byte for byte. */
  uploaded: string[];
  skipped: string[];
  /** Old data files removed from the repo because this output does not have them. */
  deleted: string[];
  bytesUploaded: number;
}

export type PushEvent =
  | { type: 'push-phase'; message: string }
  | { type: 'push-progress'; bytes: number; totalBytes: number }
  | { type: 'retry'; retry: RetryEvent }
  | { type: 'pushed'; report: PushReport };

export const DEFAULT_REPO_ID = 'trl-lib/rlaif-v';
const FILES_PER_COMMIT = 50;

interface LocalFile {
  path: string;
  file: string;
  size: number;
}

/** The files a push sends: the parquet shards under data/, then README.md. */
async function localFiles(dir: string): Promise<{ data: LocalFile[]; card: LocalFile }> {
  const dataDir = path.join(dir, 'data');
  const names = await readdir(dataDir).catch(() => [] as string[]);
  const data: LocalFile[] = [];
  for (const name of names.filter((entry) => entry.endsWith('.parquet')).sort()) {
    const file = path.join(dataDir, name);
    data.push({ path: `data/${name}`, file, size: (await stat(file)).size });
  }
  const cardFile = path.join(dir, 'README.md');
  const cardSize = await stat(cardFile).then(
    (info) => info.size,
    () => null,
  );
  if (data.length === 0 || cardSize === null) {
    throw new InputError(
      'ERR_PUSH_NOT_DATASET',
      `${dir} is not a converted dataset: it needs data/*.parquet and README.md (found ${data.length} parquet file(s)${cardSize === null ? ', no README.md' : ''}). Run \`rlaif-v convert\` first.`,
      { file: dir },
    );
  }
  return { data, card: { path: 'README.md', file: cardFile, size: cardSize } };
}

function checkRepoId(repoId: unknown): string {
  if (typeof repoId !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(repoId)) throw invalidOption('repoId', 'a dataset repo id such as trl-lib/rlaif-v', repoId);
  return repoId;
}

function refuseOffline(settings: HubSettings, repoId: string): void {
  if (settings.offline) {
    throw new HubError('ERR_HUB_OFFLINE', `Pushing to ${repoId} needs the Hub, and HF_HUB_OFFLINE is set. Unset it to push.`, { exitCode: 2 });
  }
}

/**
 * Checks, before any work, that a push can happen: a token is there and the Hub accepts it. Run it before a long
 * conversion that ends in a push. `onRetry` is told of each retried request as it happens; `signal` stops it.
 *
 * @throws {HubError} `ERR_HUB_NO_TOKEN` (saying how to log in) or `ERR_HUB_UNAUTHORIZED`.
 */
export async function checkPushAccess(
  given: HubSettings,
  repoId: string = DEFAULT_REPO_ID,
  options: { signal?: AbortSignal; onRetry?: (event: RetryEvent) => void } = {},
): Promise<void> {
  checkRepoId(repoId);
  const settings = withSignal(given, options.signal);
  refuseOffline(settings, repoId);
  const accessToken = requireToken(settings, `Pushing to ${repoId}`);
  const onRetry = options.onRetry ?? settings.retry.onRetry;
  try {
    await whoAmI({ accessToken, hubUrl: settings.hubUrl, fetch: retryFetch(settings.fetch, { ...settings.retry, ...(onRetry === undefined ? {} : { onRetry }) }) });
  } catch (error) {
    throw fromHubFailure(error, `Checking the token for ${repoId}`, settings, 'push');
  }
}

/**
 * Pushes a converted dataset directory to a dataset repo on the Hub, creating the repo if needed: the parquet shards
 * in commits of at most `filesPerCommit` files, then one last commit with README.md (and the removal of old shards
 * this output does not have), so the repo never shows a card describing files that are not there. Files the repo
 * already holds with the same content are skipped, and LFS objects the Hub already stores are not sent again, so a
 * push that was interrupted resumes where it stopped. 429 and 5xx answers are retried with backoff (honouring
 * Retry-After); uploads stream from disk.
 *
 * @throws {HubError} for a missing or refused token or a failed request; {@link InputError} when `dir` is not an output.
 */
export async function* pushIter(options: PushOptions): AsyncGenerator<PushEvent, PushReport> {
  const { signal } = options;
  const settings = withSignal(options.settings, signal);
  const repoId = checkRepoId(options.repoId ?? DEFAULT_REPO_ID);
  const filesPerCommit = options.filesPerCommit ?? FILES_PER_COMMIT;
  if (!Number.isSafeInteger(filesPerCommit) || filesPerCommit < 1 || filesPerCommit > 99) {
    throw invalidOption('filesPerCommit', 'an integer from 1 to 99 (the Hub takes fewer than 100 files a commit)', filesPerCommit);
  }
  // What is to be pushed is looked at first: a directory that is not there is the first thing to say.
  const { data, card } = await localFiles(options.dir);
  refuseOffline(settings, repoId);
  const accessToken = requireToken(settings, `Pushing to ${repoId}`);
  /** Retries, told as they happen while a request is awaited. */
  const retries = new EventQueue<PushEvent>();
  const fetch = retryFetch(settings.fetch, {
    ...settings.retry,
    onRetry: (event) => {
      retries.push({ type: 'retry', retry: event });
      settings.retry.onRetry?.(event);
    },
  });
  const credentials = { hubUrl: settings.hubUrl, accessToken, fetch };
  const repo = { type: 'dataset' as const, name: repoId };

  const exists = yield* retries.during(
    datasetInfo({ name: repoId, ...credentials }).then(
      () => true,
      (error: unknown) => {
        if (!(error instanceof HubApiError) || error.statusCode !== 404) throw fromHubFailure(error, `Looking up ${repoId}`, settings, 'push');
        return false;
      },
    ),
  );
  if (!exists) {
    yield { type: 'push-phase', message: `Creating the ${options.private === true ? 'private' : 'public'} dataset repo ${repoId}` };
    yield* retries.during(
      createRepo({ repo, private: options.private ?? false, ...credentials }).catch((error: unknown) => {
        // Created meanwhile (by an earlier attempt whose answer was lost): carry on.
        if (!(error instanceof HubApiError) || error.statusCode !== 409) throw fromHubFailure(error, `Creating ${repoId}`, settings, 'push');
      }),
    );
  }

  const listRemote = async (): Promise<Map<string, { oid: string | undefined; lfs: string | undefined; size: number }>> => {
    const remote = new Map<string, { oid: string | undefined; lfs: string | undefined; size: number }>();
    try {
      for await (const entry of listFiles({ repo, recursive: true, ...credentials })) {
        if (entry.type === 'file') remote.set(entry.path, { oid: entry.oid, lfs: entry.lfs?.oid, size: entry.size });
      }
    } catch (error) {
      throw fromHubFailure(error, `Listing ${repoId}`, settings, 'push');
    }
    return remote;
  };
  const remote = yield* retries.during(listRemote());

  yield { type: 'push-phase', message: `Checking ${data.length} shard(s) against what ${repoId} already holds` };
  const missing: LocalFile[] = [];
  const skipped: string[] = [];
  for (const file of data) {
    signal?.throwIfAborted();
    const there = remote.get(file.path);
    // Only a file the repo holds at the same path and size is worth hashing (a 500 MB shard takes seconds).
    if (there?.lfs !== undefined && there.size === file.size && there.lfs === (await hashFile(createHash('sha256'), file.file)).digest('hex')) skipped.push(file.path);
    else missing.push(file);
  }
  const local = new Set(data.map((file) => file.path));
  const stale = [...remote.keys()].filter((name) => name.startsWith('data/') && !local.has(name)).sort();
  // The card's load_dataset snippet names the local directory; on the Hub it names the repo.
  const cardContent = Buffer.from(cardForRepo(await readFile(card.file, 'utf8'), repoId));
  const cardChanged = remote.get(card.path)?.oid !== gitBlobHash(cardContent.byteLength).update(cardContent).digest('hex');

  const chunks: LocalFile[][] = [];
  for (let at = 0; at < missing.length; at += filesPerCommit) chunks.push(missing.slice(at, at + filesPerCommit));
  const totalBytes = missing.reduce((sum, file) => sum + file.size, 0);
  const finalCommit = cardChanged || stale.length > 0;
  const last = [cardChanged ? 'the card' : '', stale.length > 0 ? `the removal of ${stale.length} old shard(s)` : ''].filter((part) => part !== '').join(' and ');
  yield {
    type: 'push-phase',
    message:
      `${skipped.length} shard(s) already on the Hub; ${missing.length} to commit (${(totalBytes / 1e6).toFixed(1)} MB) in ${chunks.length} commit(s)` +
      `${finalCommit ? `, then ${last}` : ''}${!finalCommit && missing.length === 0 ? ': nothing to do' : ''}`,
  };

  const commits: PushReport['commits'] = [];
  const progress = new Map<string, number>();
  let uploadedBytes = 0;
  const runCommit = async function* (title: string, operations: CommitOperation[], sizes: Map<string, number>): AsyncGenerator<PushEvent> {
    const iterator = commitIter({ repo, title, operations, useXet: false, abortSignal: signal, ...credentials });
    for (;;) {
      const step = yield* retries.during(
        iterator.next().catch((error: unknown) => {
          throw fromHubFailure(error, `Committing to ${repoId} (${title})`, settings, 'push');
        }),
      );
      if (step.done === true) {
        if (step.value !== undefined) commits.push({ oid: step.value.commit.oid, title, files: operations.length });
        return;
      }
      const event = step.value;
      if (event.event === 'fileProgress' && event.state === 'uploading') {
        const size = sizes.get(event.path);
        if (size === undefined) continue;
        progress.set(event.path, event.progress * size);
        uploadedBytes = [...progress.values()].reduce((sum, bytes) => sum + bytes, 0);
        yield { type: 'push-progress', bytes: Math.round(uploadedBytes), totalBytes };
      }
    }
  };

  for (const [index, chunk] of chunks.entries()) {
    signal?.throwIfAborted();
    const title = `Upload ${chunk.length} data file(s)${chunks.length > 1 ? ` (part ${index + 1} of ${chunks.length})` : ''}`;
    yield { type: 'push-phase', message: `Commit ${index + 1}/${chunks.length}: ${chunk.length} shard(s)` };
    const operations: CommitOperation[] = [];
    for (const file of chunk) operations.push({ operation: 'addOrUpdate', path: file.path, content: await openAsBlob(file.file) });
    yield* runCommit(title, operations, new Map(chunk.map((file) => [file.path, file.size])));
  }
  if (finalCommit) {
    signal?.throwIfAborted();
    yield { type: 'push-phase', message: `Committing the dataset card${stale.length > 0 ? ` and removing ${stale.length} old shard(s)` : ''}` };
    const operations: CommitOperation[] = [
      { operation: 'addOrUpdate', path: card.path, content: new Blob([cardContent]) },
      ...stale.map((name): CommitOperation => ({ operation: 'delete', path: name })),
    ];
    yield* runCommit('Update the dataset card', operations, new Map());
  }
  const report: PushReport = {
    repo: repoId,
    url: `${settings.hubUrl}/datasets/${repoId}`,
    commits,
    uploaded: missing.map((file) => file.path),
    skipped,
    deleted: stale,
    bytesUploaded: totalBytes,
  };
  yield { type: 'pushed', report };
  return report;
}

/** Pushes and resolves with the report; see {@link pushIter}. */
export async function push(options: PushOptions): Promise<PushReport> {
  return drain(pushIter(options));
}

