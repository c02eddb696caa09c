import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { drain } from '../util/drain.js';
import { InputError } from '../errors.js';
import { checkCard } from './card.js';
import type { VerifyProblem } from './problem.js';
import { checkAgainstReport, checkRejects, readReport } from './report.js';
import { checkRows } from './rows.js';
import { checkFooter, listShards, type Shard } from './shards.js';

export type { VerifyProblem } from './problem.js';

/** What `verify` takes. */
export interface VerifyOptions {
  /** The dataset directory: an output of `convert` or `finalize`. */
  dir: string;
  /** Worker threads that decode the images. Default: the available cores. */
  numProc?: number;
  signal?: AbortSignal;
}

export interface VerifyReport {
  dir: string;
  ok: boolean;
  problems: VerifyProblem[];
  /** Checks that could not be made, and why (an output without report.json is not checked against it). */
  notes: string[];
  /** Rows and files found, per split. */
  splits: Record<string, { files: number; rows: number }>;
  images: { checked: number; bad: number };
}

export type VerifyEvent = { type: 'progress'; stage: 'verify'; done: number; total: number; bytes?: undefined } | { type: 'done'; report: VerifyReport };

/**
 * Reads an output back as a consumer would and says what is wrong with it: shards missing, cut short, damaged or
 * changed since they were written, files that are not shards, a footer without the schema or `huggingface` features
 * of this format, a card whose YAML disagrees with the files (features, num_examples), rows missing or repeated
 * against report.json, and every image that does not decode (checked in worker threads). Yields progress, then the
 * report; `ok` is false when anything was found.
 *
 * @throws {InputError} `ERR_INPUT_MISSING` (exit 2) when `dir` is not a directory.
 */
export async function* verifyIter(options: VerifyOptions): AsyncGenerator<VerifyEvent, VerifyReport> {
  const dir = path.resolve(options.dir);
  if ((await stat(dir).catch(() => null))?.isDirectory() !== true) {
    throw new InputError('ERR_INPUT_MISSING', `${options.dir}: no such directory. Give the directory of a converted dataset.`, { file: options.dir });
  }
  const problems: VerifyProblem[] = [];
  const notes: string[] = [];
  const { shards, rows, files } = await checkFiles(dir, problems, notes);
  const images = { checked: 0, bad: 0 };
  const total = [...rows.values()].reduce((sum, value) => sum + value, 0);
  for await (const done of checkRows(dir, shards, { numProc: options.numProc ?? availableParallelism(), signal: options.signal }, problems, images)) {
    yield { type: 'progress', stage: 'verify', done, total };
  }
  const splits = Object.fromEntries([...rows].map(([split, found]) => [split, { files: files.get(split) ?? 0, rows: found }]));
  const result: VerifyReport = { dir, ok: problems.length === 0, problems, notes, splits, images };
  yield { type: 'done', report: result };
  return result;
}

/**
 * The checks of an output's files, before its rows are read: the shards in data/ and their footers, the card against
 * them, and the rows against report.json (a note when there is none). Returns the shards, and the rows and files
 * counted per split (train first).
 */
async function checkFiles(dir: string, problems: VerifyProblem[], notes: string[]): Promise<{ shards: Shard[]; rows: Map<string, number>; files: Map<string, number> }> {
  const shards = await listShards(dir, problems);
  for (const shard of shards) await checkFooter(dir, shard, problems);
  const rows = new Map<string, number>();
  const files = new Map<string, number>();
  // Splits with a damaged shard: their rows cannot be counted.
  const unknown = new Set(shards.filter((shard) => shard.metadata === null).map((shard) => shard.split));
  for (const shard of [...shards].sort((a, b) => (a.split === b.split ? 0 : a.split === 'train' ? -1 : 1))) {
    rows.set(shard.split, (rows.get(shard.split) ?? 0) + Number(shard.metadata?.num_rows ?? 0));
    files.set(shard.split, (files.get(shard.split) ?? 0) + 1);
  }
  await checkCard(dir, shards, rows, unknown, problems);
  const report = await readReport(dir, problems);
  if (report === 'missing') notes.push('no report.json: rows were not checked against what was written');
  else if (report !== null) {
    await checkAgainstReport(dir, report, shards, rows, unknown, problems);
    await checkRejects(dir, report, problems);
  }
  return { shards, rows, files };
}

/** Checks an output and resolves with the report; see {@link verifyIter}. */
export function verify(options: VerifyOptions): Promise<VerifyReport> {
  return drain(verifyIter(options));
}
