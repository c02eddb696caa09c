/**
 * The limit: the image work no pipeline can avoid, done in a bare loop on one core. Reads every row's image from the
 * input, then times `prepareImage` on each in turn (sharp with one thread, no cache) and prints one JSON line.
 *
 * Usage: node dist/src/bench/single-core-limit.js <input dir or file> [keep|jpeg|png|webp] [quality]
 */
import sharp from 'sharp';
import type { ImageMode } from '../image/image-policy.js';
import { prepareImage } from '../image/prepare-image.js';
import { readImages } from './read-images.js';

sharp.concurrency(1);
sharp.cache(false);

const [input = 'sample', mode = 'keep', quality = '90'] = process.argv.slice(2);
const images = await readImages(input);
const policy = { mode: mode as ImageMode, quality: Number(quality), maxSide: null, maxPixels: 89_478_485 };
const started = performance.now();
let ok = 0;
for (const image of images) if ((await prepareImage(image, policy)).ok) ok++;
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ images: images.length, ok, seconds: Math.round(seconds * 100) / 100, imagesPerSecond: Math.round((images.length / seconds) * 10) / 10 }));
