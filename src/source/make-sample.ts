import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { invalidOption, OutputError } from '../errors.js';
import { makeDirectory } from '../dirs/staging.js';
import { createMarker, MARKER_FILE, markedAs } from '../dirs/tool-marker.js';
import type { ParquetSink } from '../parquet/parquet-sink.js';
import { openSourceSink, sourceRowsToIPC } from './source-rows-to-arrow.js';
import { createRandom, randomInt } from '../util/random.js';
import { drawImage, encodeImage, pick, PROFILES, type Random, type SampleProfile } from './sample-images.js';

export type { SampleProfile } from './sample-images.js';
import type { SourceImage, SourceRow } from './source-row.js';

export interface SampleOptions {
  /** Rows in all. */
  rows: number;
  /** Directory to write `RLAIF-V-Dataset_000.parquet` … into. */
  output: string;
  /** Default 42. */
  seed?: number;
  /** Files to spread the rows over. Default 1. */
  files?: number;
  /** Rows per row group. Default: one row group per file, as the real source files appear to be. */
  rowGroupSize?: number;
  /**
   * Bytes a page of the image column (and its dictionary page) may reach. Default about 1 MiB. pyarrow, which most
   * likely wrote the source, makes pages of 1,024 images: about 150 MB at the source's sizes.
   */
  pageBytes?: number;
  /** Longest side of the generated images, in pixels. Default 640 (COCO's, where most RLAIF-V images come from). */
  imageSide?: number;
  /** Fraction of rows that reuse an earlier row's image, as the source does. Default 0.2. */
  repeatFraction?: number;
  /**
   * Which images to draw. `varied` (the default): every kind the tool handles, in even measure, about 137 KB a row.
   * `source`: shaped like openbmb/RLAIF-V-Dataset's bytes, about 156 KB a row: 90% JPEG photos averaging about 73 KB
   * (mostly 4:2:0, some 4:4:4, a few progressive, grey, sRGB-tagged, and rare ones keep mode must normalize: EXIF-rotated,
   * CMYK, a P3 profile), 10% PNG averaging about 0.9 MB (RGB and RGBA), which hold more than half the bytes.
   */
  profile?: SampleProfile;
  /** Replace existing sample files. Default false. */
  overwrite?: boolean;
  /** Stops the run; the file being written is removed (files already finished stay). */
  /** Hears rows written and rows in all, as the sample is written (every 64 rows, and at the end of each file). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface SampleReport {
  files: string[];
  rows: number;
  distinctImages: number;
  bytes: number;
}

const OBJECTS = ['dog', 'cat', 'bicycle', 'red car', 'street sign', 'kite', 'teapot', 'laptop', 'bird', 'umbrella', 'bus', 'pizza', 'clock', 'boat', 'horse'];
const PLACES = ['on a city street', 'in a kitchen', 'at the beach', 'in a park', 'on a wooden table', 'near a river', 'in an office', 'on a snowy hill'];
const COLOURS = ['red', 'blue', 'green', 'yellow', 'white', 'black', 'orange', 'brown'];
const QUESTIONS = [
  (o: string) => `What is the ${o} in the image doing?`,
  (o: string) => `How many ${o}s can you see in this picture?`,
  (o: string) => `Describe the scene around the ${o} in detail.`,
  (o: string) => `What color is the ${o}, and what is next to it?`,
  (o: string) => `Is there anything unusual about the ${o} in this photo?`,
  () => 'Provide a detailed description of the given image.',
  () => 'What is written on the sign in the image?',
  () => 'Wie viele Personen sind auf dem Bild zu sehen? 🤔',
];
const SENTENCES = [
  (o: string, p: string, c: string) => `The image shows a ${c} ${o} ${p}.`,
  (_o: string, p: string) => `In the background, there are several people walking ${p}.`,
  (o: string, _p: string, c: string) => `The ${o} appears to be ${c} with a slightly worn surface.`,
  () => 'The lighting suggests the photo was taken in the late afternoon.',
  (o: string) => `There are two ${o}s visible, one partially hidden behind the other.`,
  () => 'A small sign with faded lettering stands to the left of the frame.',
  (_o: string, p: string) => `The overall atmosphere ${p} is calm and quiet.`,
  (o: string, _p: string, c: string) => `Next to the ${o} there is a ${c} bag resting on the ground.`,
  () => 'Le ciel est dégagé, avec quelques nuages à l’horizon.',
];

function answer(random: Random, object: string): string {
  const count = 2 + randomInt(random, 5);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(pick(random, SENTENCES)(object, pick(random, PLACES), pick(random, COLOURS)));
  return parts.join(' ');
}

/** What `makeSample` does when an option is not given. */
export const SAMPLE_DEFAULTS = { seed: 42, files: 1, imageSide: 640, profile: 'varied' as SampleProfile };

function checkOptions(options: SampleOptions): Required<Omit<SampleOptions, 'rowGroupSize' | 'pageBytes' | 'signal' | 'onProgress'>> & { rowGroupSize: number | null; pageBytes: number | undefined } {
  const integer = (value: unknown, name: string, min: number): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw invalidOption(name, min === 0 ? 'non-negative integer' : 'positive integer', value);
    }
    return value;
  };
  const files = integer(options.files ?? SAMPLE_DEFAULTS.files, 'files', 1);
  const rows = integer(options.rows, 'rows', 1);
  if (files > rows) throw invalidOption('files', `at most rows (${rows})`, files);
  const profile = options.profile ?? SAMPLE_DEFAULTS.profile;
  if (!Object.hasOwn(PROFILES, profile)) throw invalidOption('profile', `one of ${Object.keys(PROFILES).join(', ')}`, profile);
  const repeatFraction = options.repeatFraction ?? 0.2;
  if (typeof repeatFraction !== 'number' || !(repeatFraction >= 0 && repeatFraction < 1)) {
    throw invalidOption('repeatFraction', 'a number in [0, 1)', repeatFraction);
  }
  return {
    rows,
    output: options.output,
    seed: integer(options.seed ?? SAMPLE_DEFAULTS.seed, 'seed', 0),
    files,
    rowGroupSize: options.rowGroupSize === undefined ? null : integer(options.rowGroupSize, 'rowGroupSize', 1),
    imageSide: integer(options.imageSide ?? SAMPLE_DEFAULTS.imageSide, 'imageSide', 8),
    repeatFraction,
    overwrite: options.overwrite ?? false,
    profile,
    pageBytes: options.pageBytes === undefined ? undefined : integer(options.pageBytes, 'pageBytes', 1),
  };
}

/** The sample's dataset card. Everything in it is made by this tool from its seed, so it is under the tool's licence. */
function sampleCard(rows: number, seed: number): string {
  return `---
license: apache-2.0
pretty_name: Synthetic RLAIF-V sample
---

# Synthetic RLAIF-V sample

${rows.toLocaleString('en-US')} rows made by \`rlaif-v sample\` (seed ${seed}) with the columns, types and \`huggingface\` metadata of
[openbmb/RLAIF-V-Dataset](https://huggingface.co/datasets/openbmb/RLAIF-V-Dataset): drawn JPEG and PNG images of varied
sizes and modes, questions and answers from templates, a fifth of the rows reusing an earlier image. Nothing in it is
taken from the real dataset, so it is under the licence of the tool that made it, Apache 2.0.
`;
}

const SAMPLE_FILE = /^RLAIF-V-Dataset_\d{3,}\.parquet$/;

/**
 * Makes the sample's directory or takes it as it is, and returns the sample files in it that a sample of `files` files
 * would leave behind: an earlier, larger sample's, to be removed once the new one is written (only from a directory
 * this tool made as a sample; from any other, they are refused); and whether to mark it as a sample once written.
 *
 * @throws {OutputError} `ERR_OUTPUT_EXISTS` for such files in a directory this tool did not make, or without overwrite.
 */
async function sampleDirectory(dir: string, files: number, overwrite: boolean): Promise<{ stale: string[]; mark: boolean }> {
  await makeDirectory(path.dirname(path.resolve(dir)), 'the sample');
  const names = await readdir(dir).catch(() => null);
  if (names === null || names.every((name) => name.startsWith(MARKER_FILE))) {
    await makeDirectory(dir, 'the sample');
    return { stale: [], mark: (await markedAs(dir, 'sample')) === null };
  }
  const wanted = new Set(Array.from({ length: files }, (_, index) => sampleFileName(index)));
  const stale = names.filter((name) => SAMPLE_FILE.test(name) && !wanted.has(name)).sort();
  if (stale.length === 0) return { stale: [], mark: false };
  if (!overwrite || (await markedAs(dir, 'sample')) === null) {
    throw new OutputError(
      'ERR_OUTPUT_EXISTS',
      `${dir} holds ${stale.join(', ')}, which a sample of ${files} file(s) would not replace, and which would be read with it` +
        (overwrite ? ': it was not made by rlaif-v sample, so they are not removed.' : '.') +
        ' Remove them, or choose another output.',
    );
  }
  return { stale: stale.map((name) => path.join(dir, name)), mark: false };
}

/** `RLAIF-V-Dataset_000.parquet`: the source's own file names. */
export function sampleFileName(index: number): string {
  return `RLAIF-V-Dataset_${String(index).padStart(3, '0')}.parquet`;
}

type PendingRow = Omit<SourceRow, 'image'> & { image: Promise<SourceImage> };

async function writeRows(sink: ParquetSink, pending: PendingRow[]): Promise<void> {
  const images = await Promise.all(pending.map((row) => row.image));
  await sink.write(sourceRowsToIPC(pending.map((row, index) => ({ ...row, image: images[index] ?? null }))));
}

/**
 * Writes a synthetic dataset with the exact schema and `huggingface` metadata of openbmb/RLAIF-V-Dataset: real JPEG
 * and PNG images of varied sizes and modes, question and answer text, some images repeated. The same options always
 * give the same bytes.
 *
 * @throws {OptionError} for a bad option; {@link OutputError} when a sample file exists and `overwrite` is not set.
 */
export async function makeSample(options: SampleOptions): Promise<SampleReport> {
  const resolved = checkOptions(options);
  const random = createRandom(resolved.seed);
  const { stale, mark } = await sampleDirectory(resolved.output, resolved.files, resolved.overwrite);
  const perFile = Math.ceil(resolved.rows / resolved.files);
  const written: string[] = [];
  // Images are drawn in order (that is what consumes the seeded generator) and encoded concurrently.
  const seen: { image: Promise<SourceImage>; path: string }[] = [];
  let bytes = 0;
  let row = 0;
  for (let file = 0; file < resolved.files; file++) {
    const target = path.join(resolved.output, sampleFileName(file));
    const exists = await stat(target).then(
      () => true,
      () => false,
    );
    if (exists && !resolved.overwrite) {
      throw new OutputError('ERR_OUTPUT_EXISTS', `${target} already exists. Replace it with the overwrite option (--overwrite), or choose another output.`);
    }
    await rm(target, { force: true });
    const rowsInFile = Math.min(perFile, resolved.rows - row);
    const sink = await openSourceSink(target, resolved.rowGroupSize ?? Math.max(1, rowsInFile), resolved.pageBytes);
    try {
      let pending: PendingRow[] = [];
      for (let i = 0; i < rowsInFile; i++, row++) {
        let image: { image: Promise<SourceImage>; path: string };
        if (seen.length > 0 && random() < resolved.repeatFraction) {
          image = pick(random, seen);
        } else {
          const drawn = drawImage(random, resolved.imageSide, PROFILES[resolved.profile]);
          const imagePath = `${String(seen.length).padStart(6, '0')}.${drawn.kind.startsWith('png') ? 'png' : 'jpg'}`;
          image = { image: encodeImage(drawn).then((bytes) => ({ bytes, path: imagePath })), path: imagePath };
          image.image.catch(() => undefined); // awaited when its rows are written
          seen.push(image);
        }
        const object = pick(random, OBJECTS);
        const origin = pick(random, ['VQAv2', 'OK-VQA', 'COCO', 'ShareGPT4V', 'MovieNet', 'Google-Landmark-v2', 'ART500K']);
        pending.push({
          ds_name: 'RLAIF-V',
          image: image.image,
          question: pick(random, QUESTIONS)(object),
          chosen: answer(random, object),
          rejected: answer(random, object),
          origin_dataset: origin,
          origin_split: JSON.stringify({ model: pick(random, ['OmniLMM-12B', 'RLAIF-V-7B']), type: 'detailed_description' }),
          idx: String(row),
          image_path: `${origin}/${image.path}`,
        });
        if (pending.length === 64) {
          options.signal?.throwIfAborted();
          await writeRows(sink, pending);
          options.onProgress?.(row + 1, resolved.rows);
          pending = [];
        }
      }
      options.signal?.throwIfAborted();
      if (pending.length > 0) await writeRows(sink, pending);
      options.onProgress?.(row, resolved.rows);
      await sink.close();
    } catch (error) {
      await sink.abort();
      throw error;
    }
    written.push(target);
    bytes += (await stat(target)).size;
  }
  // Files of an earlier sample of more files would be read with these: gone, now that the new ones are whole.
  for (const file of stale) await rm(file, { force: true });
  // A directory made (or found empty) for the sample is marked so once the sample is whole.
  if (mark) await createMarker(resolved.output, 'sample').catch(() => undefined);
  // A card of its own, as a dataset on the Hub has: what it is and its licence, which a conversion carries on.
  await writeFile(path.join(resolved.output, 'README.md'), sampleCard(resolved.rows, resolved.seed));
  return { files: written, rows: resolved.rows, distinctImages: seen.length, bytes };
}
