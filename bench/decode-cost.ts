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
import { inspectInput } from '../src/inspect-input.js';
import { pythonWithDatasets } from './python-env.js';
import { framed } from './read-images.js';

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

// The same images through Pillow, as the Python script decodes and re-saves them.
const PILLOW = String.raw`
import io, sys, time
from PIL import Image
data = sys.stdin.buffer.read()
images, at = [], 0
while at < len(data):
    size = int.from_bytes(data[at:at + 4], "little")
    images.append(data[at + 4:at + 4 + size])
    at += 4 + size
def decode(b): Image.open(io.BytesIO(b)).load()
def reencode(b): Image.open(io.BytesIO(b)).save(io.BytesIO(), "JPEG", quality=75)
for name, run in (("Pillow decode", decode), ("Pillow decode + q75", reencode)):
    for b in images[:20]: run(b)
    started = time.perf_counter()
    for b in images: run(b)
    ms = (time.perf_counter() - started) / len(images) * 1000
    print(f"{name:<24} {ms:.2f} ms an image ({1000 / ms:.0f} images/s)")
`;
const found = await pythonWithDatasets();
if ('skip' in found) {
  console.log(`Pillow: skipped (${found.skip})`);
} else {
  const child = spawn(found.python, ['-c', PILLOW], { stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.end(framed(jpegs.map((image) => image.bytes)));
  await new Promise((resolve) => child.on('close', resolve));
}
