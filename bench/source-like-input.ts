/**
 * Inputs shaped like openbmb/RLAIF-V-Dataset, for the benches that must see what the real source costs: a base sample
 * of `sample --profile source` images (90% JPEG photos of ~73 KB, 10% PNG of ~0.9 MB, ~155 KB a row), tiled out to
 * any number of rows with **every image distinct** (each copy carries a JPEG comment or a PNG tEXt chunk naming it,
 * so neither the in-run sharing nor the cache can skip its work, while it decodes exactly as its original), in files of
 * one row group each, as the real files appear to be, and by default in pages as large as pyarrow makes them
 * (it fills a page with 1,024 values before it checks its size: a dictionary page of about 1,000 images, then pages of
 * as many, about 160 MB each). Built once into bench/.cache/ and reused.
 *
 * The full-size stand-in: `sourceLikeInput({ rows: 83_132, files: 14 })`, 14 files of about 0.92 GB, 12.9 GB.
 */
import { mkdir, rename, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { makeSample, sampleFileName } from '../src/source/make-sample.js';
import { openSourceSink, sourceRowsToIPC } from '../src/source/source-rows-to-arrow.js';
import type { SourceRow } from '../src/source/source-row.js';
import { ROOT } from './shaped-input.js';

export interface SourceLikeOptions {
  rows: number;
  files: number;
  /**
   * Page layout of the image column. `pyarrow` (the default): pages as pyarrow lays them out by default, and so most
   * likely the source: a dictionary page and data pages of about 1,024 images (160 MB here). `small`: about 1 MiB.
   */
  pages?: 'small' | 'pyarrow';
  /** Distinct base images the copies are made from. Default 2,000. */
  baseRows?: number;
}

/** A JPEG with a comment segment (`FF FE`) put after its APPn segments, so EXIF and ICC stay where readers look. */
function markJpeg(bytes: Uint8Array, note: string): Uint8Array {
  let at = 2;
  while (at + 4 <= bytes.length && bytes[at] === 0xff && (bytes[at + 1] ?? 0) >= 0xe0 && (bytes[at + 1] ?? 0) <= 0xef) {
    at += 2 + (((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0));
  }
  const text = Buffer.from(note, 'latin1');
  const segment = Buffer.alloc(4 + text.length);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(2 + text.length, 2);
  text.copy(segment, 4);
  return Buffer.concat([bytes.subarray(0, at), segment, bytes.subarray(at)]);
}

/** A PNG with a tEXt chunk put right after IHDR (8 bytes of signature, then 25 of IHDR). */
function markPng(bytes: Uint8Array, note: string): Uint8Array {
  const data = Buffer.concat([Buffer.from('tEXt', 'latin1'), Buffer.from(`Comment\0${note}`, 'latin1')]);
  const chunk = Buffer.alloc(8 + data.length);
  chunk.writeUInt32BE(data.length - 4, 0);
  data.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(data), 4 + data.length);
  return Buffer.concat([bytes.subarray(0, 33), chunk, bytes.subarray(33)]);
}

/** The image of base row `row` as copy `copy`: copy 0 is the original. */
function copyOf(bytes: Uint8Array, copy: number): Uint8Array {
  if (copy === 0) return bytes;
  const note = `rlaif-v bench copy ${copy}`;
  return bytes[0] === 0xff ? markJpeg(bytes, note) : markPng(bytes, note);
}

async function baseRows(rows: number): Promise<SourceRow[]> {
  const dir = path.join(ROOT, 'bench', '.cache', `source-like-base-${rows}`);
  const file = path.join(dir, sampleFileName(0));
  if (!(await stat(file).catch(() => null))) {
    process.stderr.write(`Drawing ${rows} distinct RLAIF-V-like images into ${dir} (once)...\n`);
    await makeSample({ rows, output: dir, repeatFraction: 0, profile: 'source', overwrite: true });
  }
  const read = await parquetReadObjects({ file: await asyncBufferFromFile(file), utf8: false });
  const text = (value: unknown): string | null => (typeof value === 'string' ? value : value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : null);
  return read.map((row) => {
    const image = row.image as { bytes: Uint8Array; path: Uint8Array | null };
    return {
      ds_name: text(row.ds_name),
      image: { bytes: image.bytes, path: text(image.path) },
      question: text(row.question),
      chosen: text(row.chosen),
      rejected: text(row.rejected),
      origin_dataset: text(row.origin_dataset),
      origin_split: text(row.origin_split),
      idx: text(row.idx),
      image_path: text(row.image_path),
    };
  });
}

/** The directory of the input, made the first time it is asked for (about 3 minutes for the full size). */
export async function sourceLikeInput(options: SourceLikeOptions): Promise<string> {
  const { rows, files } = options;
  const pages = options.pages ?? 'pyarrow';
  const dir = path.join(ROOT, 'bench', '.cache', `source-like-${rows}x${files}-${pages}`);
  // pyarrow fills a page with 1,024 values before it looks at its size: at 156 KB a row, 160 MB.
  const pageBytes = pages === 'pyarrow' ? 160e6 : undefined;
  if ((await readdir(dir).catch(() => [])).filter((name) => name.endsWith('.parquet')).length === files) return dir;
  const base = await baseRows(options.baseRows ?? 2000);
  process.stderr.write(`Writing ${rows} rows of distinct images in ${files} file(s) of one row group, ${pages} pages, into ${dir} (once)...\n`);
  await rm(dir, { recursive: true, force: true });
  const building = `${dir}.building`;
  await rm(building, { recursive: true, force: true });
  await mkdir(building, { recursive: true });
  const perFile = Math.ceil(rows / files);
  let row = 0;
  for (let file = 0; file < files; file++) {
    const inFile = Math.min(perFile, rows - row);
    const sink = await openSourceSink(path.join(building, sampleFileName(file)), inFile, pageBytes);
    for (let done = 0; done < inFile; ) {
      const batch: SourceRow[] = [];
      for (; batch.length < 64 && done < inFile; done++, row++) {
        const from = base[row % base.length] as SourceRow;
        const image = from.image?.bytes == null ? from.image : { ...from.image, bytes: copyOf(from.image.bytes, Math.floor(row / base.length)) };
        batch.push({ ...from, image, idx: String(row) });
      }
      await sink.write(sourceRowsToIPC(batch));
    }
    await sink.close();
    process.stderr.write(`  ${sampleFileName(file)}: ${inFile} rows, ${((await stat(path.join(building, sampleFileName(file)))).size / 1e9).toFixed(2)} GB\n`);
  }
  await rename(building, dir);
  return dir;
}
