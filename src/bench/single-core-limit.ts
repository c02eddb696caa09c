/**
 * The limit: the image work no pipeline can avoid, done in a bare loop on one core. Reads every row's image from the
 * input, then times `prepareImage` on each in turn (sharp with one thread, no cache) and prints one JSON line, with
 * the cost of each kind of image (baseline JPEG, progressive JPEG, PNG).
 *
 * Usage: node dist/src/bench/single-core-limit.js <input dir or file> [keep|jpeg|png|webp] [quality]
 */
import sharp from 'sharp';
import type { ImageMode } from '../image/image-policy.js';
import { prepareImage } from '../image/prepare-image.js';
import type { ImageKindCost } from './bench-results.js';
import { readImages } from './read-images.js';

sharp.concurrency(1);
sharp.cache(false);

const [input = 'sample', mode = 'keep', quality = '90'] = process.argv.slice(2);
const images = await readImages(input);
const policy = { mode: mode as ImageMode, quality: Number(quality), maxSide: null, maxPixels: 89_478_485 };
/** The kind of an image, for the costs by kind: a baseline or a progressive JPEG (its frame marker), a PNG. */
function kindOf(bytes: Uint8Array): ImageKindCost['kind'] {
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return 'png';
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return 'other';
  for (let at = 2; at + 4 <= bytes.byteLength; ) {
    if (bytes[at] !== 0xff) return 'other';
    const marker = bytes[at + 1] ?? 0;
    if (marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce) return 'jpeg-progressive';
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return 'jpeg-baseline';
    at += 2 + (((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0));
  }
  return 'other';
}

const started = performance.now();
let ok = 0;
const byKind = new Map<ImageKindCost['kind'], { images: number; ms: number }>();
for (const image of images) {
  const from = performance.now();
  if ((await prepareImage(image, policy)).ok) ok++;
  const kind = kindOf(image);
  const entry = byKind.get(kind) ?? { images: 0, ms: 0 };
  entry.images++;
  entry.ms += performance.now() - from;
  byKind.set(kind, entry);
}
const seconds = (performance.now() - started) / 1000;
const kinds: ImageKindCost[] = [...byKind].map(([kind, { images: count, ms }]) => ({ kind, images: count, msPerImage: Math.round((ms / count) * 100) / 100 }));
console.log(JSON.stringify({ images: images.length, ok, seconds: Math.round(seconds * 100) / 100, imagesPerSecond: Math.round((images.length / seconds) * 10) / 10, kinds }));
