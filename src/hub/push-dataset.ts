import { commitIter, createRepo, datasetInfo, HubApiError, listFiles, whoAmI, type CommitOperation } from '@huggingface/hub';
import { fromHubFailure } from './hub-error.js';
import { HubError, invalidOption } from '../errors.js';
import { requireToken, withSignal, type HubSettings } from './hub-settings.js';
import { EventQueue } from '../util/event-queue.js';
import { describePlan, localFiles, planPush, type PushPlan, type RepoFile } from './plan-push.js';
import { retryFetch, type RetryEvent } from './retry-fetch.js';
import { drain } from '../util/drain.js';
import { meterUploads, type UploadTally } from './upload-meter.js';
import { uploadOperation, type RepoAccess } from './upload-operation.js';

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
  /**
   * How the data went up: `xet` (content-defined chunks, those the Hub already stores not sent), `lfs` (whole
   * objects, where the Hub offers no Xet), or null when nothing was sent.
   */
  transfer: 'xet' | 'lfs' | null;
  /** Bytes of the data files committed in this run (`uploaded`). */
  bytesInFiles: number;
  /**
   * @deprecated Use `bytesInFiles`: the same number under its name before Xet, when it was also what went up (see
   * `bytesSent` for that now). Kept so that readers of the `--json` report do not break; to go in the next major version.
   */
  bytesUploaded: number;
  /** Bytes sent to store them: Xet xorbs (compressed chunks) and shards (their metadata), or LFS objects. */
  bytesSent: number;
  /** Bytes of those files not sent because the Hub already had them: chunks it stores, objects already uploaded. */
  bytesDeduplicated: number;
}

export type PushEvent =
  | { type: 'push-phase'; message: string }
  /** `bytes` of the files' `totalBytes` are done (sent, or found on the Hub); `sentBytes` went up so far. */
  | { type: 'push-progress'; bytes: number; totalBytes: number; sentBytes: number }
  | { type: 'retry'; retry: RetryEvent }
  | { type: 'pushed'; report: PushReport };

export const DEFAULT_REPO_ID = 'trl-lib/rlaif-v';
const FILES_PER_COMMIT = 50;

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

/** Where a push goes and how it talks to the Hub, shared by its steps. */
interface PushContext {
  repoId: string;
  repo: { type: 'dataset'; name: string };
  credentials: { hubUrl: string; accessToken: string; fetch: typeof fetch };
  /** How uploadOperation reads the earlier versions of the files. */
  access: RepoAccess;
  settings: HubSettings;
  /** What the uploads sent so far (the credentials' fetch counts it). */
  tally: UploadTally;
  /** Retries, told as they happen while a request is awaited. */
  retries: EventQueue<PushEvent>;
  signal: AbortSignal | undefined;
}

/**
 * Pushes a converted dataset directory to a dataset repo on the Hub, creating the repo if needed: the parquet shards
 * in commits of at most `filesPerCommit` files, then one last commit with README.md (and the removal of old shards
 * this output does not have), so the repo never shows a card describing files that are not there. Files the repo
 * already holds with the same content are skipped, and objects the Hub already stores are not sent again, so a push
 * that was interrupted resumes where it stopped. Where the Hub offers Xet, files go up as content-defined chunks and
 * chunks the Hub stores are not sent (each file is deduplicated against the repo's earlier version of it); elsewhere
 * as whole LFS objects, streamed from disk. 429 and 5xx answers are retried with backoff (honouring Retry-After).
 * The report says what was sent and what deduplication spared.
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
  const local = await localFiles(options.dir);
  refuseOffline(settings, repoId);
  const accessToken = requireToken(settings, `Pushing to ${repoId}`);
  const retries = new EventQueue<PushEvent>();
  const tally: UploadTally = { sent: 0, newContent: 0, xorbs: 0, shards: 0 };
  const retry = {
    ...settings.retry,
    onRetry: (event: RetryEvent) => {
      retries.push({ type: 'retry', retry: event });
      settings.retry.onRetry?.(event);
    },
  };
  const fetch = meterUploads(retryFetch(settings.fetch, retry), tally);
  const credentials = { hubUrl: settings.hubUrl, accessToken, fetch };
  const access: RepoAccess = {
    repoId,
    ...credentials,
    // The read of an earlier version's head retries once itself, and never fails the push.
    fetch: settings.fetch,
    retry,
    signal,
    onHeadFailure: (filePath, reason) =>
      retries.push({ type: 'push-phase', message: `Could not read the start of ${filePath} as the repo holds it (${reason}): its new version goes up whole, not deduplicated against it` }),
  };
  const context: PushContext = { repoId, repo: { type: 'dataset', name: repoId }, credentials, access, settings, tally, retries, signal };

  yield* ensureRepo(context, options.private ?? false);
  const remote = yield* retries.during(listRepo(context));
  yield { type: 'push-phase', message: `Checking ${local.data.length} shard(s) against what ${repoId} already holds` };
  const plan = await planPush(local, remote, repoId, filesPerCommit, signal);
  yield { type: 'push-phase', message: describePlan(plan) };
  const commits = yield* commitPlan(context, plan, remote);
  const report: PushReport = {
    repo: repoId,
    url: `${settings.hubUrl}/datasets/${repoId}`,
    commits,
    uploaded: plan.upload.map((file) => file.path),
    skipped: plan.skipped,
    deleted: plan.stale,
    transfer: tally.xorbs + tally.shards > 0 ? 'xet' : tally.sent > 0 ? 'lfs' : null,
    bytesInFiles: plan.totalBytes,
    bytesUploaded: plan.totalBytes,
    bytesSent: tally.sent,
    bytesDeduplicated: Math.max(0, plan.totalBytes - tally.newContent),
  };
  yield { type: 'pushed', report };
  return report;
}

/** Creates the dataset repo when the Hub does not have it (private when asked), saying so. */
async function* ensureRepo(context: PushContext, isPrivate: boolean): AsyncGenerator<PushEvent, void> {
  const { repoId, credentials, settings, retries } = context;
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
    yield { type: 'push-phase', message: `Creating the ${isPrivate ? 'private' : 'public'} dataset repo ${repoId}` };
    yield* retries.during(
      createRepo({ repo: context.repo, private: isPrivate, ...credentials }).catch((error: unknown) => {
        // Created meanwhile (by an earlier attempt whose answer was lost): carry on.
        if (!(error instanceof HubApiError) || error.statusCode !== 409) throw fromHubFailure(error, `Creating ${repoId}`, settings, 'push');
      }),
    );
  }
}

/** The files the repo holds, by path. */
async function listRepo(context: PushContext): Promise<Map<string, RepoFile>> {
  const remote = new Map<string, RepoFile>();
  try {
    for await (const entry of listFiles({ repo: context.repo, recursive: true, ...context.credentials })) {
      if (entry.type === 'file') remote.set(entry.path, { oid: entry.oid, lfs: entry.lfs?.oid, xet: entry.xetHash, size: entry.size });
    }
  } catch (error) {
    throw fromHubFailure(error, `Listing ${context.repoId}`, context.settings, 'push');
  }
  return remote;
}

/**
 * Makes the plan's commits in order: the data files', then the last one with the card and the deletions. `remote`,
 * what the repo held before, gives each data file an earlier version to deduplicate against (see uploadOperation).
 */
async function* commitPlan(context: PushContext, plan: PushPlan, remote: Map<string, RepoFile>): AsyncGenerator<PushEvent, PushReport['commits']> {
  const { commits: chunks, stale } = plan;
  const commits: PushReport['commits'] = [];
  const uploaded = { bytes: new Map<string, number>(), total: plan.totalBytes };
  for (const [index, chunk] of chunks.entries()) {
    context.signal?.throwIfAborted();
    const title = `Upload ${chunk.length} data file(s)${chunks.length > 1 ? ` (part ${index + 1} of ${chunks.length})` : ''}`;
    yield { type: 'push-phase', message: `Commit ${index + 1}/${chunks.length}: ${chunk.length} shard(s)` };
    const operations: CommitOperation[] = [];
    // It fails only when the push is stopped: a failed read of an earlier version means a whole upload.
    for (const file of chunk) operations.push(yield* context.retries.during(uploadOperation(file, remote, context.access)));
    const made = yield* runCommit(context, title, operations, new Map(chunk.map((file) => [file.path, file.size])), uploaded);
    if (made !== undefined) commits.push(made);
  }
  if (plan.finalCommit) {
    context.signal?.throwIfAborted();
    yield { type: 'push-phase', message: `Committing the dataset card${stale.length > 0 ? ` and removing ${stale.length} old shard(s)` : ''}` };
    const operations: CommitOperation[] = [
      { operation: 'addOrUpdate', path: plan.card.path, content: new Blob([plan.card.content]) },
      ...stale.map((name): CommitOperation => ({ operation: 'delete', path: name })),
    ];
    const made = yield* runCommit(context, 'Update the dataset card', operations, new Map(), uploaded);
    if (made !== undefined) commits.push(made);
  }
  return commits;
}

/**
 * Makes one commit, telling the upload's progress over the whole push (`uploaded.bytes` holds each file's bytes sent
 * so far; `sizes` the sizes of this commit's data files). Returns the commit, or undefined when the Hub made none.
 */
async function* runCommit(
  context: PushContext,
  title: string,
  operations: CommitOperation[],
  sizes: Map<string, number>,
  uploaded: { bytes: Map<string, number>; total: number },
): AsyncGenerator<PushEvent, PushReport['commits'][number] | undefined> {
  // Xet where the Hub offers it (the library's default): the LFS batch answers with the transfer to use.
  const iterator = commitIter({ repo: context.repo, title, operations, abortSignal: context.signal, ...context.credentials });
  for (;;) {
    const step = yield* context.retries.during(
      iterator.next().catch((error: unknown) => {
        throw fromHubFailure(error, `Committing to ${context.repoId} (${title})`, context.settings, 'push');
      }),
    );
    if (step.done === true) return step.value === undefined ? undefined : { oid: step.value.commit.oid, title, files: operations.length };
    const event = step.value;
    if (event.event === 'fileProgress' && event.state === 'uploading') {
      const size = sizes.get(event.path);
      if (size === undefined) continue;
      uploaded.bytes.set(event.path, event.progress * size);
      const bytes = [...uploaded.bytes.values()].reduce((sum, sent) => sum + sent, 0);
      yield { type: 'push-progress', bytes: Math.round(bytes), totalBytes: uploaded.total, sentBytes: context.tally.sent };
    }
  }
}

/** Pushes and resolves with the report; see {@link pushIter}. */
export async function push(options: PushOptions): Promise<PushReport> {
  return drain(pushIter(options));
}

