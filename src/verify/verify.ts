import { open, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { drain } from '../util/drain.js';
import { InputError } from '../errors.js';
import { fileBuffer } from '../parquet/read-column-pages.js';
import type { VerifyImagesResult, VerifyImagesTask } from './protocol.js';
import { createPool } from '../util/worker-pool.js';
import { workerUrl } from '../util/paths.js';
import { checkCard } from './card.js';
import type { VerifyProblem } from './problem.js';
import { checkAgainstReport, checkRejects, readReport } from './report.js';
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

  const numProc = options.numProc ?? availableParallelism();
  const pool = createPool<VerifyImagesTask, VerifyImagesResult>({ filename: workerUrl('verify-images').href, minThreads: numProc, maxThreads: numProc, idleTimeout: 1000 });
  const images = { checked: 0, bad: 0 };
  const total = [...rows.values()].reduce((sum, value) => sum + value, 0);
  let done = 0;
  try {
    const inFlight: { shard: Shard; result: Promise<VerifyImagesResult> }[] = [];
    const take = async (): Promise<void> => {
      const head = inFlight.shift();
      if (head === undefined) return;
      for (const bad of (await head.result).bad) {
        images.bad++;
        problems.push({ code: 'bad_image', where: `${head.shard.file} row ${bad.row}`, message: `${head.shard.file}, row ${bad.row}: ${bad.message}` });
      }
    };
    for (const shard of shards) {
      const metadata = shard.metadata;
      if (metadata === null) continue;
      const handle = await open(path.join(dir, shard.file), 'r');
      try {
        const buffer = await fileBuffer(handle, shard.size);
        let rowStart = 0;
        for (const [index, group] of metadata.row_groups.entries()) {
          const rowEnd = rowStart + Number(group.num_rows);
          let read: { images?: { bytes?: Uint8Array | null }[] | null }[];
          try {
            // Every column is decoded: a damaged text page is as much a damaged shard as a damaged image.
            read = (await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors, utf8: false })) as typeof read;
            if (read.length !== rowEnd - rowStart) throw new Error(`it gave ${read.length} rows where its footer says ${rowEnd - rowStart}`);
          } catch (error) {
            problems.push({ code: 'shard_damaged', where: `${shard.file} row group ${index}`, message: `${shard.file}: row group ${index} cannot be read (${String(error)})` });
            rowStart = rowEnd;
            continue;
          }
          const task: VerifyImagesTask = { firstRow: rowStart, images: [] };
          for (const [offset, row] of read.entries()) {
            const bytes = row.images?.[0]?.bytes ?? null;
            if (bytes === null || bytes.byteLength === 0) {
              problems.push({ code: 'bad_image', where: `${shard.file} row ${rowStart + offset}`, message: `${shard.file}, row ${rowStart + offset}: the row has no image` });
              images.bad++;
            }
            task.images.push(bytes === null || bytes.byteLength === 0 ? null : bytes.slice());
          }
          images.checked += task.images.length;
          const transfer = task.images.flatMap((bytes) => (bytes === null ? [] : [bytes.buffer as ArrayBuffer]));
          inFlight.push({ shard, result: pool.run(task, { transferList: transfer, signal: options.signal ?? null }) });
          while (inFlight.length >= 2 * numProc) await take();
          done += rowEnd - rowStart;
          rowStart = rowEnd;
          options.signal?.throwIfAborted();
          yield { type: 'progress', stage: 'verify', done, total };
        }
      } finally {
        await handle.close();
      }
    }
    while (inFlight.length > 0) await take();
  } finally {
    await pool.destroy();
  }
  const splits = Object.fromEntries([...rows].map(([split, found]) => [split, { files: files.get(split) ?? 0, rows: found }]));
  const result: VerifyReport = { dir, ok: problems.length === 0, problems, notes, splits, images };
  yield { type: 'done', report: result };
  return result;
}

/** Checks an output and resolves with the report; see {@link verifyIter}. */
export function verify(options: VerifyOptions): Promise<VerifyReport> {
  return drain(verifyIter(options));
}
