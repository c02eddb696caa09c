import { createReadStream } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { FileMetaData } from 'hyparquet';
import { outputHuggingfaceMetadata } from '../output/output-features.js';
import { readFooter } from '../parquet/read-column-pages.js';
import { OUTPUT_PARQUET_SCHEMA } from '../write/output-parquet-schema.js';
import type { VerifyProblem } from './problem.js';
import { count } from '../util/format.js';

/** The shards of an output: found in data/, their footers read and checked against this format. */

const SHARD_NAME = /^(train|test)-(\d{5})-of-(\d{5})\.parquet$/;

/** A shard found in data/, with its footer once read. */
export interface Shard {
  file: string;
  split: string;
  size: number;
  metadata: FileMetaData | null;
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

export async function fileCrc(file: string): Promise<number> {
  let crc = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 2 ** 20 })) crc = crc32(chunk as Buffer, crc);
  return crc;
}

/** Lists data/: the shards by split, and a problem for every missing shard and every file that is not one. */
export async function listShards(dir: string, problems: VerifyProblem[]): Promise<Shard[]> {
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

/** A parquet file that does not end with its closing `PAR1`. */
export class CutShort extends Error {}

/**
 * The footer of the parquet file open in `handle`, of `size` bytes.
 *
 * @throws {CutShort} when it does not end with PAR1; what hyparquet throws when its footer does not read.
 */
export async function readParquetFooter(handle: FileHandle, size: number): Promise<FileMetaData> {
  const tail = Buffer.alloc(4);
  if (size >= 12) await handle.read(tail, 0, 4, size - 4);
  if (tail.toString('latin1') !== 'PAR1') throw new CutShort(`it does not end with PAR1 (${count(size)} bytes)`);
  return readFooter(handle, size);
}

/** Reads a shard's footer and checks its schema and features; a problem for a shard cut short or damaged. */
export async function checkFooter(dir: string, shard: Shard, problems: VerifyProblem[]): Promise<void> {
  const handle = await open(path.join(dir, shard.file), 'r');
  try {
    shard.metadata = await readParquetFooter(handle, shard.size);
  } catch (error) {
    const message = error instanceof CutShort ? `${shard.file} is cut short: ${error.message}` : `${shard.file}: its footer cannot be read (${String(error)})`;
    problems.push({ code: 'shard_damaged', where: shard.file, message });
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
