import { createReadStream } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { parquetReadObjects, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { parse as parseYaml } from 'yaml';
import type { ConvertReport } from '../run/convert-report.js';
import { drain } from '../util/drain.js';
import { InputError } from '../errors.js';
import { outputHuggingfaceMetadata } from '../output/output-features.js';
import { outputYamlFeatures } from '../output/output-schema.js';
import { fileBuffer, readFooter } from '../parquet/read-column-pages.js';
import { OUTPUT_PARQUET_SCHEMA } from '../write/shard-sink.js';
import type { VerifyImagesResult, VerifyImagesTask } from '../types.js';
import { createPool } from '../util/worker-pool.js';
import { workerUrl } from '../util/paths.js';

/** What `verify` takes. */
export interface VerifyOptions {
  /** The dataset directory: an output of `convert` or `finalize`. */
  dir: string;
  /** Worker threads that decode the images. Default: the available cores. */
  numProc?: number;
  signal?: AbortSignal;
}

/** One thing found wrong: a stable code, where (a file, and a row), and what. */
export interface VerifyProblem {
  code:
    | 'unexpected_file'
    | 'missing_shard'
    | 'shard_damaged'
    | 'shard_schema'
    | 'shard_metadata'
    | 'shard_changed'
    | 'bad_image'
    | 'missing_card'
    | 'card_features'
    | 'card_splits'
    | 'card_data_files'
    | 'report_damaged'
    | 'missing_rejects'
    | 'rejects_damaged'
    | 'rows_differ';
  where: string;
  message: string;
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

const SHARD_NAME = /^(train|test)-(\d{5})-of-(\d{5})\.parquet$/;

/** A shard found in data/, with its footer once read. */
interface Shard {
  file: string;
  split: string;
  size: number;
  metadata: FileMetaData | null;
}

function count(value: number): string {
  return value.toLocaleString('en-US');
}

/** The parsed YAML front matter of a dataset card; null when it has none; an Error when it does not parse. */
function frontMatter(card: string): Record<string, unknown> | Error | null {
  const match = /^---\r?\n([\s\S]*?)\r?\n---(\r?\n|$)/.exec(card);
  if (match === null) return null;
  try {
    const parsed: unknown = parseYaml(match[1] ?? '');
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : null;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * `datasets` features as what they mean, whatever way of writing them: a list as `[x]`, as `Sequence` or `List` of x
 * (datasets 4 and later write List); without the fields that do not change the meaning.
 */
function meaning(feature: unknown): unknown {
  if (Array.isArray(feature)) return feature.length === 1 ? { list: meaning(feature[0]) } : feature.map(meaning);
  if (feature === null || typeof feature !== 'object') return feature;
  const fields = feature as Record<string, unknown>;
  if ((fields._type === 'Sequence' || fields._type === 'List' || fields._type === 'LargeList') && 'feature' in fields) return { list: meaning(fields.feature) };
  return Object.fromEntries(
    Object.entries(fields)
      .filter(([key, value]) => key !== 'id' && !(key === 'length' && value === -1))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => [key, meaning(value)]),
  );
}

/** The features of a `huggingface` metadata value, as what they mean; null when it does not parse. */
function featuresMeaning(value: string): string | null {
  try {
    return JSON.stringify(meaning((JSON.parse(value) as { info?: { features?: unknown } }).info?.features ?? null));
  } catch {
    return null;
  }
}

const EXPECTED_FEATURES = featuresMeaning(outputHuggingfaceMetadata);

/**
 * The schema of a footer as the facts that matter: names, types, nesting, annotations (not the root's name, which
 * writers choose: pyarrow writes `schema`).
 */
function schemaShape(schema: readonly { name: string; type?: string | undefined; repetition_type?: string | undefined; num_children?: number | undefined; converted_type?: string | undefined }[]): string {
  return JSON.stringify(
    schema.map((element, index) => [index === 0 ? '' : element.name, element.type ?? null, element.repetition_type ?? null, element.num_children ?? null, element.converted_type ?? null]),
  );
}

const EXPECTED_SCHEMA = schemaShape(OUTPUT_PARQUET_SCHEMA);

async function fileCrc(file: string): Promise<number> {
  let crc = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 2 ** 20 })) crc = crc32(chunk as Buffer, crc);
  return crc;
}

/** Lists data/: the shards by split, and a problem for every missing shard and every file that is not one. */
async function listShards(dir: string, problems: VerifyProblem[]): Promise<Shard[]> {
  const names = await readdir(path.join(dir, 'data')).catch(() => null);
  if (names === null) {
    problems.push({ code: 'missing_shard', where: 'data/', message: 'data/ is missing: the dataset has no shards' });
    return [];
  }
  const shards: Shard[] = [];
  const bySplit = new Map<string, { indices: Set<number>; counts: Set<number> }>();
  for (const name of names.sort()) {
    const match = SHARD_NAME.exec(name);
    if (match === null) {
      problems.push({ code: 'unexpected_file', where: `data/${name}`, message: `data/${name} is not a shard (train-NNNNN-of-NNNNN.parquet): the card's data_files patterns may pick it up` });
      continue;
    }
    const split = match[1] ?? '';
    const entry = bySplit.get(split) ?? { indices: new Set(), counts: new Set() };
    entry.indices.add(Number(match[2]));
    entry.counts.add(Number(match[3]));
    bySplit.set(split, entry);
    const info = await stat(path.join(dir, 'data', name)).catch(() => null);
    if (info === null || !info.isFile()) {
      // A link to nothing (a snapshot whose blob is gone), or not a file: there is no shard to read.
      problems.push({ code: 'missing_shard', where: `data/${name}`, message: `data/${name} ${info === null ? 'cannot be read: it links to nothing' : 'is not a file'}` });
      continue;
    }
    shards.push({ file: `data/${name}`, split, size: info.size, metadata: null });
  }
  for (const [split, { indices, counts }] of bySplit) {
    const total = Math.max(...counts);
    if (counts.size > 1) problems.push({ code: 'missing_shard', where: `data/${split}-*`, message: `the ${split} shards disagree on how many there are (${[...counts].join(', ')})` });
    for (let index = 0; index < total; index++) {
      if (indices.has(index)) continue;
      const name = `data/${split}-${String(index).padStart(5, '0')}-of-${String(total).padStart(5, '0')}.parquet`;
      problems.push({ code: 'missing_shard', where: name, message: `${name} is missing` });
    }
  }
  return shards;
}

/** Reads a shard's footer and checks its schema and features; a problem for a shard cut short or damaged. */
async function checkFooter(dir: string, shard: Shard, problems: VerifyProblem[]): Promise<void> {
  const handle = await open(path.join(dir, shard.file), 'r');
  try {
    const tail = Buffer.alloc(4);
    if (shard.size >= 12) await handle.read(tail, 0, 4, shard.size - 4);
    if (tail.toString('latin1') !== 'PAR1') {
      problems.push({ code: 'shard_damaged', where: shard.file, message: `${shard.file} is cut short: it does not end with PAR1 (${count(shard.size)} bytes)` });
      return;
    }
    shard.metadata = await readFooter(handle, shard.size);
  } catch (error) {
    problems.push({ code: 'shard_damaged', where: shard.file, message: `${shard.file}: its footer cannot be read (${String(error)})` });
    return;
  } finally {
    await handle.close();
  }
  if (schemaShape(shard.metadata.schema) !== EXPECTED_SCHEMA) {
    const columns = shard.metadata.schema.filter((element) => element.num_children !== undefined && element.repetition_type === 'OPTIONAL' && ['chosen', 'rejected', 'prompt', 'images'].includes(element.name));
    problems.push({
      code: 'shard_schema',
      where: shard.file,
      message: `${shard.file} does not have the columns and types of this format (chosen, rejected, prompt as lists of messages, images as a list of {bytes, path}); it has ${columns.map((element) => element.name).join(', ') || 'other columns'}`,
    });
  }
  const features = shard.metadata.key_value_metadata?.find((entry) => entry.key === 'huggingface')?.value;
  if (features === undefined || featuresMeaning(features) !== EXPECTED_FEATURES) {
    problems.push({
      code: 'shard_metadata',
      where: shard.file,
      message: `${shard.file} ${features === undefined ? 'has no' : 'has other'} huggingface features in its footer: datasets would not read images as Image`,
    });
  }
}

/**
 * Checks README.md's YAML against the files: the features, and each split's num_examples (not for the splits in
 * `unknown`, whose rows cannot be counted: a shard of theirs is damaged, which is said already).
 */
async function checkCard(dir: string, shards: Shard[], rows: Map<string, number>, unknown: Set<string>, problems: VerifyProblem[]): Promise<void> {
  const card = await readFile(path.join(dir, 'README.md'), 'utf8').catch(() => null);
  if (card === null) {
    problems.push({ code: 'missing_card', where: 'README.md', message: 'README.md is missing: load_dataset would not know the features or the splits' });
    return;
  }
  const yaml = frontMatter(card);
  if (yaml instanceof Error) {
    problems.push({ code: 'missing_card', where: 'README.md', message: `README.md's YAML front matter does not parse (${yaml.message.split('\n')[0] ?? ''}): load_dataset would fail on it` });
    return;
  }
  const info = yaml?.dataset_info as { features?: unknown; splits?: { name?: unknown; num_examples?: unknown }[] } | undefined;
  if (info === undefined) {
    problems.push({ code: 'missing_card', where: 'README.md', message: 'README.md has no dataset_info in its YAML front matter' });
    return;
  }
  const expected = (parseYaml(`dataset_info:\n${outputYamlFeatures}`) as { dataset_info: { features: unknown } }).dataset_info.features;
  if (JSON.stringify(info.features) !== JSON.stringify(expected)) {
    problems.push({ code: 'card_features', where: 'README.md', message: 'README.md lists other features than the files hold: load_dataset would fail to cast the files to them' });
  }
  const listed = new Map((info.splits ?? []).map((split) => [String(split.name), Number(split.num_examples)]));
  for (const [split, found] of rows) {
    if (unknown.has(split)) continue;
    const said = listed.get(split);
    if (said === undefined) problems.push({ code: 'card_splits', where: 'README.md', message: `README.md does not list the ${split} split, which data/ holds` });
    else if (said !== found) {
      problems.push({
        code: 'card_splits',
        where: 'README.md',
        message: `README.md says ${split} has ${count(said)} rows (num_examples), the files hold ${count(found)}: load_dataset fails with NonMatchingSplitsSizesError`,
      });
    }
  }
  for (const split of listed.keys()) {
    if (!rows.has(split)) problems.push({ code: 'card_splits', where: 'README.md', message: `README.md lists a ${split} split that data/ does not hold` });
  }
  await checkDataFiles(dir, yaml?.configs, shards, problems);
}

/** A `data_files` pattern as a regular expression over paths relative to the dataset: `*` within a folder, `**` across. */
function globPattern(glob: string): RegExp {
  const parts = glob.split(/(\*\*\/?|\*|\?)/).map((part) => {
    if (part === '**') return '.*';
    if (part === '**/') return '(?:.*/)?';
    if (part === '*') return '[^/]*';
    if (part === '?') return '[^/]';
    return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('')}$`);
}

/**
 * Checks the card's `configs` (what `load_dataset` reads the splits from): each split's `data_files` patterns must pick
 * up its shards, and only its own; a pattern that matches no file makes load_dataset fail. A card without `configs`
 * is left to datasets' own layout rules.
 */
async function checkDataFiles(dir: string, configs: unknown, shards: Shard[], problems: VerifyProblem[]): Promise<void> {
  if (!Array.isArray(configs)) return;
  const config = (configs as { config_name?: unknown; data_files?: unknown }[]).find((entry) => entry?.config_name === 'default') ?? configs[0];
  const entries = (config as { data_files?: unknown } | undefined)?.data_files;
  if (!Array.isArray(entries)) return;
  const files = (await readdir(dir, { recursive: true })).map((name) => name.split(path.sep).join('/'));
  const picked = new Map<string, string>();
  for (const entry of entries as { split?: unknown; path?: unknown }[]) {
    const split = String(entry?.split ?? 'train');
    const patterns = (Array.isArray(entry?.path) ? entry.path : [entry?.path]).filter((value): value is string => typeof value === 'string');
    for (const glob of patterns) {
      const matching = files.filter((file) => globPattern(glob).test(file));
      if (matching.length === 0) {
        problems.push({ code: 'card_data_files', where: 'README.md', message: `README.md's data_files for the ${split} split (${glob}) match no file: load_dataset fails with FileNotFoundError` });
      }
      for (const file of matching) picked.set(file, split);
    }
  }
  for (const shard of shards) {
    const split = picked.get(shard.file);
    if (split === shard.split) continue;
    problems.push({
      code: 'card_data_files',
      where: shard.file,
      message: split === undefined ? `${shard.file} is not picked up by README.md's data_files: load_dataset would leave its rows out` : `README.md's data_files put ${shard.file} in the ${split} split`,
    });
  }
}

/** What is wrong with a parsed report.json as this tool's report, in the fields verify reads; null when nothing. */
function reportFlaw(value: unknown): string | null {
  const report = value as Partial<ConvertReport> | null;
  if (report === null || typeof report !== 'object' || Array.isArray(report)) return 'it is not an object';
  if (typeof report.input?.rows !== 'number') return 'it has no input.rows';
  if (typeof report.rejected?.rows !== 'number') return 'it has no rejected.rows';
  const splits = report.output?.splits;
  if (splits === null || typeof splits !== 'object') return 'it has no output.splits';
  for (const [name, split] of Object.entries(splits)) {
    if (typeof split?.rows !== 'number' || !Array.isArray(split.files)) return `its output.splits.${name} has no rows or files`;
    const files = split.files as { file?: unknown; size?: unknown; crc?: unknown }[];
    if (!files.every((file) => typeof file?.file === 'string' && typeof file.size === 'number' && typeof file.crc === 'number')) return `its output.splits.${name}.files are not files with a size and a CRC`;
  }
  return null;
}

/**
 * report.json, read: `missing` when there is none (an output not of this tool), null when it is there but does not read
 * as this tool's report (cut short, emptied, edited), which is a problem.
 */
async function readReport(dir: string, problems: VerifyProblem[]): Promise<ConvertReport | 'missing' | null> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'report.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    problems.push({ code: 'report_damaged', where: 'report.json', message: `report.json cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})` });
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    problems.push({ code: 'report_damaged', where: 'report.json', message: `report.json is not JSON (${error instanceof Error ? error.message : String(error)}): it was cut short or changed` });
    return null;
  }
  const flaw = reportFlaw(parsed);
  if (flaw === null) return parsed as ConvertReport;
  problems.push({ code: 'report_damaged', where: 'report.json', message: `report.json is not a report of this tool (${flaw}): the files cannot be checked against it` });
  return null;
}

/** Checks rejects/rejects.parquet against report.json: there when rows were rejected, whole, every row of it readable. */
async function checkRejects(dir: string, report: ConvertReport, problems: VerifyProblem[]): Promise<void> {
  const where = 'rejects/rejects.parquet';
  if (report.rejected.rows === 0) return;
  const file = path.join(dir, where);
  const size = (await stat(file).catch(() => null))?.size;
  if (size === undefined) {
    problems.push({ code: 'missing_rejects', where, message: `${where} is missing: report.json says ${count(report.rejected.rows)} rows were rejected, and the file keeps them` });
    return;
  }
  let rows: number;
  try {
    const handle = await open(file, 'r');
    try {
      const tail = Buffer.alloc(4);
      if (size >= 12) await handle.read(tail, 0, 4, size - 4);
      if (tail.toString('latin1') !== 'PAR1') throw new Error(`it is cut short: it does not end with PAR1 (${count(size)} bytes)`);
      const metadata = await readFooter(handle, size);
      rows = (await parquetReadObjects({ file: await fileBuffer(handle, size), metadata, compressors, utf8: false })).length;
    } finally {
      await handle.close();
    }
  } catch (error) {
    problems.push({ code: 'rejects_damaged', where, message: `${where} cannot be read: ${error instanceof Error ? error.message : String(error)}` });
    return;
  }
  if (rows !== report.rejected.rows) {
    problems.push({ code: 'rows_differ', where, message: `${where} holds ${count(rows)} rows; report.json says ${count(report.rejected.rows)} were rejected` });
  }
}

/** Checks the files against what report.json says was written: each shard's size, CRC-32 and rows, and every row's account. */
async function checkAgainstReport(
  dir: string,
  report: ConvertReport,
  shards: Shard[],
  rows: Map<string, number>,
  unknown: Set<string>,
  problems: VerifyProblem[],
): Promise<void> {
  const present = new Map(shards.map((shard) => [shard.file, shard]));
  for (const [split, written] of Object.entries(report.output.splits)) {
    for (const file of written.files) {
      const shard = present.get(file.file);
      if (shard === undefined) {
        if (!problems.some((problem) => problem.where === file.file)) problems.push({ code: 'missing_shard', where: file.file, message: `${file.file} is missing` });
        continue;
      }
      if (shard.size !== file.size || (await fileCrc(path.join(dir, file.file))) !== file.crc) {
        problems.push({
          code: 'shard_changed',
          where: file.file,
          message: `${file.file} is not as it was written (${shard.size === file.size ? 'its bytes differ' : `${count(shard.size)} bytes, written with ${count(file.size)}`})`,
        });
      }
    }
    const found = rows.get(split) ?? 0;
    if (!unknown.has(split) && found !== written.rows) {
      problems.push({ code: 'rows_differ', where: `data/${split}-*`, message: `the ${split} shards hold ${count(found)} rows; report.json says ${count(written.rows)} were written` });
    }
  }
  const out = [...rows.values()].reduce((sum, value) => sum + value, 0);
  if (unknown.size === 0 && out + report.rejected.rows !== report.input.rows) {
    problems.push({
      code: 'rows_differ',
      where: 'data/',
      message: `${count(out)} rows in the files and ${count(report.rejected.rows)} rejected do not make the ${count(report.input.rows)} input rows of report.json`,
    });
  }
}

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
