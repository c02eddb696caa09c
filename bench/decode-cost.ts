/**
 * What validating and re-encoding an image costs, per way of doing it, on one core: `npm run bench:decode [-- <input>]`.
 * Reads the JPEG images of the input (default: the 2,000-row bench sample) and times, for each, a header read, a full
 * decode, a decode at 1/8 scale (which skips the inverse DCT but still reads every entropy-coded block), re-encodes at
 * quality 75 with and without optimised Huffman tables, and sharp's fixed cost (decoding a 16x16 JPEG). Where Python
 * with Pillow is installed (the bench's virtualenv), Pillow's decode and decode + quality 75 of the same images too.
 */
import { openAsBlob } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { tableFromIPC } from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { inspectInput } from '../src/plan/inspect-input.js';
import { pythonWithDatasets } from '../src/bench/python-env.js';
import { framed } from '../src/bench/read-images.js';

sharp.concurrency(1);
sharp.cache(false);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const input = process.argv[2] ?? path.join(ROOT, 'bench', '.cache', 'sample-2000');
const plan = await inspectInput([input], { maxRowGroupBytes: 3 * 2 ** 30, streamRowGroupBytes: 3 * 2 ** 30 });
const jpegs: { bytes: Uint8Array; width: number }[] = [];
for (const file of plan.files) {
  const parquet = await ParquetFile.fromFile(await openAsBlob(file.path));
  for (const group of file.rowGroups) {
    const table = tableFromIPC((await parquet.read({ rowGroups: [group.index], columns: ['image'] })).intoIPCStream());
    const column = table.getChild('image')?.getChild('bytes');
    for (let i = 0; i < table.numRows && jpegs.length < 400; i++) {
      const bytes: unknown = column?.get(i);
      if (bytes instanceof Uint8Array && bytes[0] === 0xff && bytes[1] === 0xd8) {
        jpegs.push({ bytes: bytes.slice(), width: (await sharp(bytes).metadata()).width ?? 8 });
      }
    }
  }
  parquet.free();
}

const tiny = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).jpeg().toBuffer();
const ways: [string, (image: { bytes: Uint8Array; width: number }) => Promise<unknown>][] = [
  ['fixed cost (16x16 JPEG)', () => sharp(tiny).raw().toBuffer()],
  ['header only (metadata)', (image) => sharp(image.bytes).metadata()],
  ['full decode', (image) => sharp(image.bytes, { failOn: 'error' }).raw().toBuffer()],
  ['decode at 1/8 scale', (image) => sharp(image.bytes, { failOn: 'error' }).resize({ width: Math.ceil(image.width / 8), kernel: 'nearest' }).raw().toBuffer()],
  ['re-encode q75, optimised', (image) => sharp(image.bytes, { failOn: 'error' }).jpeg({ quality: 75, optimiseCoding: true }).toBuffer()],
  ['re-encode q75, plain', (image) => sharp(image.bytes, { failOn: 'error' }).jpeg({ quality: 75, optimiseCoding: false }).toBuffer()],
];
const averageKB = jpegs.reduce((total, image) => total + image.bytes.byteLength, 0) / jpegs.length / 1024;
console.log(`${jpegs.length} JPEG images, ${averageKB.toFixed(0)} KB on average, sharp ${sharp.versions.sharp ?? ''} (libvips ${sharp.versions.vips}), one thread`);
for (const [name, run] of ways) {
  for (const image of jpegs.slice(0, 20)) await run(image); // warm up
  const started = performance.now();
  for (const image of jpegs) await run(image);
  const ms = (performance.now() - started) / jpegs.length;
  console.log(`${name.padEnd(24)} ${ms.toFixed(2)} ms an image (${(1000 / ms).toFixed(0)} images/s)`);
}

// The same images through Pillow, as the Python script decodes and re-saves them (bench/image-costs.py: per image,
// the best of two passes).
const found = await pythonWithDatasets();
if ('skip' in found) {
  console.log(`Pillow: skipped (${found.skip})`);
} else {
  const child = spawn(found.python, [path.join(ROOT, 'bench', 'image-costs.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(framed(jpegs.map((image) => image.bytes)));
  let out = '';
  for await (const chunk of child.stdout) out += String(chunk);
  const costs = JSON.parse(out) as Record<string, number[]>;
  for (const [name, way] of [['Pillow decode', 'load'], ['Pillow decode + q75', 'jpeg75']] as const) {
    const times = costs[way] ?? [];
    const ms = times.reduce((sum, value) => sum + value, 0) / Math.max(1, times.length);
    console.log(`${name.padEnd(24)} ${ms.toFixed(2)} ms an image (${(1000 / ms).toFixed(0)} images/s)`);
  }
}
