import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { cardForRepo } from '../output/load-line.js';
import { InputError } from '../errors.js';
import { gitBlobHash, hashFile } from './hash-file.js';

/** A file of the output to push: its path in the repo, its path here, and its size. */
interface LocalFile {
  path: string;
  file: string;
  size: number;
}

/** The files a push sends: the parquet shards under data/, then README.md. */
export async function localFiles(dir: string): Promise<{ data: LocalFile[]; card: LocalFile }> {
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

/**
 * A file the repo holds, as its listing gives it: the git object id, the LFS sha256 (for LFS files), the Xet hash
 * (for files the Hub stores with Xet) and the size.
 */
export interface RepoFile {
  oid: string | undefined;
  lfs: string | undefined;
  xet?: string | undefined;
  size: number;
}

/** What a push does, decided before any commit: see {@link planPush}. */
export interface PushPlan {
  /** Data files to send: those the repo does not hold byte for byte. */
  upload: LocalFile[];
  /** `upload` in commits of at most `filesPerCommit` files, in order. */
  commits: LocalFile[][];
  /** Data files the repo already holds byte for byte. */
  skipped: string[];
  /** Old data files to remove from the repo because this output does not have them. */
  stale: string[];
  /** README.md as the repo is to hold it, and whether that differs from the repo's. */
  card: { path: string; content: Buffer; changed: boolean };
  /** A last commit is needed: the card changed, or old shards are to go. */
  finalCommit: boolean;
  totalBytes: number;
}

/**
 * Decides what a push does, from the files here and those the repo holds: the data files to upload (the repo does
 * not hold them byte for byte), in commits of at most `filesPerCommit` files; the old data files to delete; and the
 * card as the repo is to hold it, committed last (with the deletions) when it changed or files go.
 */
export async function planPush(
  local: { data: LocalFile[]; card: LocalFile },
  remote: Map<string, RepoFile>,
  repoId: string,
  filesPerCommit: number,
  signal: AbortSignal | undefined,
): Promise<PushPlan> {
  const { data, card } = local;
  const upload: LocalFile[] = [];
  const skipped: string[] = [];
  for (const file of data) {
    signal?.throwIfAborted();
    const there = remote.get(file.path);
    // Only a file the repo holds at the same path and size is worth hashing (a 500 MB shard takes seconds).
    if (there?.lfs !== undefined && there.size === file.size && there.lfs === (await hashFile(createHash('sha256'), file.file)).digest('hex')) skipped.push(file.path);
    else upload.push(file);
  }
  const here = new Set(data.map((file) => file.path));
  const stale = [...remote.keys()].filter((name) => name.startsWith('data/') && !here.has(name)).sort();
  // The card's load_dataset snippet names the local directory; on the Hub it names the repo.
  const content = Buffer.from(cardForRepo(await readFile(card.file, 'utf8'), repoId));
  const changed = remote.get(card.path)?.oid !== gitBlobHash(content.byteLength).update(content).digest('hex');
  const commits: LocalFile[][] = [];
  for (let at = 0; at < upload.length; at += filesPerCommit) commits.push(upload.slice(at, at + filesPerCommit));
  const totalBytes = upload.reduce((sum, file) => sum + file.size, 0);
  return { upload, commits, skipped, stale, card: { path: card.path, content, changed }, finalCommit: changed || stale.length > 0, totalBytes };
}

/** The plan in one line, for the push-phase event before the commits. */
export function describePlan(plan: PushPlan): string {
  const { upload, commits, skipped, stale, finalCommit, totalBytes } = plan;
  const last = [plan.card.changed ? 'the card' : '', stale.length > 0 ? `the removal of ${stale.length} old shard(s)` : ''].filter((part) => part !== '').join(' and ');
  return (
    `${skipped.length} shard(s) already on the Hub; ${upload.length} to commit (${(totalBytes / 1e6).toFixed(1)} MB) in ${commits.length} commit(s)` +
    `${finalCommit ? `, then ${last}` : ''}${!finalCommit && upload.length === 0 ? ': nothing to do' : ''}`
  );
}
