/**
 * The corpus of messy and broken input the tests hold the tool to, generated (never hand-made binaries):
 * `node dist/scripts/bad-corpus.js <dir>` writes it out for a look; tests call the functions directly.
 *
 * Each image case names what must become of it in `--images keep`: kept byte for byte, re-encoded (and how it must
 * then look), or rejected with a stable code.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { Field, Int64, Schema, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { ParquetSink } from '../src/parquet/parquet-sink.js';
import { sourceColumns, writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import type { RejectCode, SourceRow } from '../src/source/source-row.js';

export type Expected =
  | { outcome: 'kept' }
  | { outcome: 'reencoded'; width: number; height: number; format?: 'jpeg' | 'png' }
  | { outcome: 'rejected'; code: RejectCode };

export interface ImageCase {
  name: string;
  bytes: Uint8Array | null;
  expected: Expected;
}

const WIDTH = 48;
const HEIGHT = 32;

/** A small picture with structure, so that orientation and colour mistakes show. */
export function picture(channels: 3 | 4 = 3, width = WIDTH, height = HEIGHT): Sharp {
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * channels;
      pixels[offset] = (x * 255) / width;
      pixels[offset + 1] = (y * 255) / height;
      pixels[offset + 2] = x < width / 2 ? 30 : 220;
      if (channels === 4) pixels[offset + 3] = x < width / 3 ? 0 : 255;
    }
  }
  return sharp(pixels, { raw: { width, height, channels } });
}

const bytesOf = async (image: Sharp): Promise<Uint8Array> => new Uint8Array(await image.toBuffer());

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A PNG whose header claims 30,000 × 30,000 pixels (900 M) over a few bytes of data: a decompression bomb. */
function pngBomb(): Uint8Array {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(30_000, 0);
  header.writeUInt32BE(30_000, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // greyscale
  const rows = deflateSync(Buffer.alloc(30_001 * 16));
  return new Uint8Array(
    Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', rows), chunk('IEND', Buffer.alloc(0))]),
  );
}

/** Every image case, in a fixed order. */
export async function imageCases(): Promise<ImageCase[]> {
  const jpeg = await bytesOf(picture().jpeg({ quality: 90 }));
  const png = await bytesOf(picture().png());
  const corruptPng = Buffer.from(png);
  const at = corruptPng.indexOf('IDAT') + 12;
  corruptPng[at] = (corruptPng[at] ?? 0) ^ 0xff; // data no longer matches its CRC
  const big = await bytesOf(picture(3, 256, 256).jpeg({ quality: 90 }));
  const cases: ImageCase[] = [
    { name: 'jpeg', bytes: jpeg, expected: { outcome: 'kept' } },
    { name: 'png', bytes: png, expected: { outcome: 'kept' } },
    { name: 'png-palette-transparent', bytes: await bytesOf(picture(4).png({ palette: true, colours: 16 })), expected: { outcome: 'kept' } },
    { name: 'webp', bytes: await bytesOf(picture().webp()), expected: { outcome: 'kept' } },
    { name: 'one-pixel', bytes: await bytesOf(picture(3, 1, 1).png()), expected: { outcome: 'kept' } },
    { name: 'jpeg-truncated', bytes: big.subarray(0, Math.floor(big.length * 0.6)), expected: { outcome: 'rejected', code: 'corrupt_image' } },
    { name: 'png-bad-crc', bytes: new Uint8Array(corruptPng), expected: { outcome: 'rejected', code: 'corrupt_image' } },
    { name: 'zero-bytes', bytes: new Uint8Array(0), expected: { outcome: 'rejected', code: 'empty_image' } },
    { name: 'random-bytes', bytes: new Uint8Array(4096).map((_, i) => (i * 7919 + (i >> 3)) % 251), expected: { outcome: 'rejected', code: 'unsupported_image' } },
    {
      name: 'svg',
      bytes: new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><circle r="9" cx="10" cy="10"/></svg>'),
      expected: { outcome: 'rejected', code: 'unsupported_image' },
    },
    { name: 'html', bytes: new TextEncoder().encode('<!doctype html><html><body><img src="x.jpg"></body></html>'), expected: { outcome: 'rejected', code: 'unsupported_image' } },
    { name: 'bmp', bytes: new Uint8Array(Buffer.concat([Buffer.from('BM'), Buffer.alloc(62)])), expected: { outcome: 'rejected', code: 'unsupported_image' } },
    { name: 'png-bomb-30000x30000', bytes: pngBomb(), expected: { outcome: 'rejected', code: 'image_too_large' } },
    { name: 'tiff', bytes: await bytesOf(picture().tiff({ compression: 'lzw' })), expected: { outcome: 'reencoded', width: WIDTH, height: HEIGHT, format: 'jpeg' } },
    { name: 'gif', bytes: await bytesOf(picture().gif()), expected: { outcome: 'reencoded', width: WIDTH, height: HEIGHT } },
    { name: 'avif', bytes: await bytesOf(picture().avif()), expected: { outcome: 'reencoded', width: WIDTH, height: HEIGHT, format: 'jpeg' } },
    { name: 'cmyk-jpeg', bytes: await bytesOf(picture().toColourspace('cmyk').jpeg()), expected: { outcome: 'reencoded', width: WIDTH, height: HEIGHT, format: 'jpeg' } },
    { name: 'png-16-bit', bytes: await bytesOf(picture().toColourspace('rgb16').png()), expected: { outcome: 'reencoded', width: WIDTH, height: HEIGHT, format: 'jpeg' } },
    { name: 'png-rgba-transparent-16-bit', bytes: await bytesOf(picture(4).toColourspace('rgb16').png()), expected: { outcome: 'reencoded', width: WIDTH, height: HEIGHT, format: 'png' } },
  ];
  const frames = Buffer.concat([await picture().raw().toBuffer(), await picture().negate().raw().toBuffer()]);
  cases.push({
    name: 'gif-animated',
    bytes: await bytesOf(sharp(frames, { raw: { width: WIDTH, height: HEIGHT * 2, channels: 3, pageHeight: HEIGHT } }).gif({ loop: 0 })),
    expected: { outcome: 'reencoded', width: WIDTH, height: HEIGHT },
  });
  for (let orientation = 2; orientation <= 8; orientation++) {
    const swapped = orientation >= 5;
    cases.push({
      name: `jpeg-exif-orientation-${orientation}`,
      bytes: await bytesOf(picture().jpeg({ quality: 90 }).withMetadata({ orientation })),
      expected: { outcome: 'reencoded', width: swapped ? HEIGHT : WIDTH, height: swapped ? WIDTH : HEIGHT, format: 'jpeg' },
    });
  }
  return cases;
}

export interface FileCase {
  name: string;
  /** The inputs to convert, in order (a good file first where the case is about one bad file among good ones). */
  inputs: string[];
  /** An InputError code and what its message must say, or the rows the input converts to. */
  expected: { code: string; message: RegExp } | { rows: number };
  /** Options the case needs, as CLI flags. */
  flags?: string[];
}

/** A plain source row around the given image. */
export function sourceRow(index: number, image: SourceRow['image'], overrides: Partial<SourceRow> = {}): SourceRow {
  return {
    ds_name: 'RLAIF-V',
    image,
    question: `What is in picture ${index}?`,
    chosen: `A good answer about picture ${index}.`,
    rejected: `A worse answer about picture ${index}.`,
    origin_dataset: 'VQAv2',
    origin_split: 'train',
    idx: String(index),
    image_path: `images/${index}.jpg`,
    ...overrides,
  };
}

/** Rows of a small valid source file, each with a JPEG of its own size. */
export async function goodRows(count: number): Promise<SourceRow[]> {
  const rows: SourceRow[] = [];
  for (let i = 0; i < count; i++) rows.push(sourceRow(i, { bytes: await bytesOf(picture(3, 24 + i, 24).jpeg()), path: `${i}.jpg` }));
  return rows;
}

/** Writes a table of the given columns (in the given order, any types) as parquet. */
async function writeColumns(file: string, columns: Record<string, Vector>): Promise<void> {
  const fields = Object.entries(columns).map(([name, vector]) => new Field(name, vector.type, true));
  const sink = await ParquetSink.open(file, { rowGroupSize: 100, metadata: new Map() });
  await sink.write(tableToIPC(new Table(new Schema(fields), columns), 'stream'));
  await sink.close();
}

/** Writes every file-level case under `dir` and says what each must give. */
export async function fileCases(dir: string): Promise<FileCase[]> {
  await mkdir(dir, { recursive: true });
  const at = (name: string): string => path.join(dir, name);
  const rows = await goodRows(5);
  await writeSourceFile(at('good.parquet'), rows);
  const good = await readFile(at('good.parquet'));

  await writeFile(at('text.parquet'), 'ds_name,question\nRLAIF-V,what?\n'.repeat(10));
  await writeFile(at('cut.parquet'), good.subarray(0, good.length - 50));
  const broken = Buffer.from(good);
  const footerLength = broken.readUInt32LE(broken.length - 8);
  broken.fill(0xff, broken.length - 8 - footerLength, broken.length - 8);
  await writeFile(at('broken-footer.parquet'), broken);

  const noQuestion = sourceColumns(rows);
  delete noQuestion.question;
  await writeColumns(at('no-question.parquet'), noQuestion);
  await writeColumns(at('int-question.parquet'), { ...sourceColumns(rows), question: vectorFromArray(rows.map((_, i) => BigInt(i)), new Int64()) });
  await writeColumns(at('int-image.parquet'), { ...sourceColumns(rows), image: vectorFromArray(rows.map((_, i) => BigInt(i)), new Int64()) });
  await writeSourceFile(at('empty.parquet'), []);
  // Another valid file whose schema disagrees with the first: its columns in reverse order, plus two extra ones.
  const columns = sourceColumns(rows);
  const reversed = Object.fromEntries(Object.entries(columns).reverse());
  await writeColumns(at('reordered-extra.parquet'), {
    extra_text: vectorFromArray(rows.map(() => 'ignored'), new Utf8()),
    ...reversed,
    extra_number: vectorFromArray(rows.map((_, i) => BigInt(i)), new Int64()),
  });

  return [
    { name: 'a missing file', inputs: [at('good.parquet'), at('nope.parquet')], expected: { code: 'ERR_INPUT_MISSING', message: /nope\.parquet: no such file/ } },
    { name: 'a file that is not parquet', inputs: [at('good.parquet'), at('text.parquet')], expected: { code: 'ERR_NOT_PARQUET', message: /text\.parquet: not a parquet file/ } },
    { name: 'a file cut short (its footer is gone)', inputs: [at('cut.parquet')], expected: { code: 'ERR_PARQUET_TRUNCATED', message: /cut\.parquet: the parquet file is truncated/ } },
    { name: 'a footer that does not parse', inputs: [at('broken-footer.parquet')], expected: { code: 'ERR_PARQUET_FOOTER', message: /broken-footer\.parquet: the parquet footer cannot be read/ } },
    { name: 'a missing column', inputs: [at('good.parquet'), at('no-question.parquet')], expected: { code: 'ERR_MISSING_COLUMN', message: /no-question\.parquet: missing column question/ } },
    { name: 'a column of the wrong type', inputs: [at('int-question.parquet')], expected: { code: 'ERR_COLUMN_TYPE', message: /int-question\.parquet: column question is Int64, expected string/ } },
    {
      name: 'an image column that is neither a datasets Image, bytes nor a path',
      inputs: [at('int-image.parquet')],
      expected: { code: 'ERR_COLUMN_TYPE', message: /int-image\.parquet: column image is Int64, expected struct<bytes: binary, path: string> \(a datasets Image\), binary .* or string \(a path/ },
    },
    { name: 'no rows at all', inputs: [at('empty.parquet')], expected: { code: 'ERR_INPUT_EMPTY', message: /holds no rows/ } },
    {
      name: 'a row group too large to load, refused before reading it',
      inputs: [at('good.parquet')],
      // What must be loaded at once is the text: the images are read a page at a time.
      expected: { code: 'ERR_ROW_GROUP_TOO_LARGE', message: /good\.parquet: row group 0 holds .* over the 64 B/ },
      flags: ['--max-row-group-bytes', '64B'],
    },
    { name: 'a file with no rows among files with rows', inputs: [at('good.parquet'), at('empty.parquet')], expected: { rows: 5 } },
    { name: 'files whose schemas disagree (column order, extra columns)', inputs: [at('good.parquet'), at('reordered-extra.parquet')], expected: { rows: 10 } },
  ];
}

/** Writes the corpus to `dir`: the images one file a case, the file cases under files/. */
async function main(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const item of await imageCases()) {
    if (item.bytes !== null) await writeFile(path.join(dir, `${item.name}.bin`), item.bytes);
  }
  await fileCases(path.join(dir, 'files'));
  process.stderr.write(`Wrote the corpus to ${dir}\n`);
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(path.basename(process.argv[1]))) await main(process.argv[2] ?? 'bad-corpus');
