/**
 * How far this machine lets the throughput targets of issue 9 go: `npm run bench:bounds [-- <input>]` (default: the
 * 2,000-row bench sample; Pillow's figures need the bench's Python, see python-env.ts).
 *
 * Times every row's image on one core, by kind (sequential JPEG, progressive JPEG, PNG): this tool's check and its
 * quality-75 re-encode, and Pillow's draft load (the limit loop), full load (the plain script in keep mode) and
 * quality-75 re-save (the plain script with --images jpeg). Then the bare check loop twice at once (how much the
 * second core adds), and one conversion at --num-proc 1 and 2. From these, the ceiling of each target if nothing but
 * the image work cost anything; this tool checks each distinct image once, the plain script every row's.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { ConvertReport } from '../src/run/convert-report.js';
import { readImageHeader } from '../src/image/image-header.js';
import { prepareImage } from '../src/image/prepare-image.js';
import { measureNode } from '../src/bench/measure-process.js';
import { pythonWithDatasets } from '../src/bench/python-env.js';
import { framed, readImages } from '../src/bench/read-images.js';

sharp.concurrency(1);
sharp.cache(false);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'bin.js');
const LIMIT = path.join(ROOT, 'dist', 'bench', 'single-core-limit.js');
const input = process.argv[2] ?? path.join(ROOT, 'bench', '.cache', 'sample-2000');

const images = await readImages(input);
/** A JPEG's SOF marker says whether it is progressive. */
function kind(bytes: Uint8Array): string {
  const header = readImageHeader(bytes);
  if (header === null) return 'other';
  if (header.format === 'png') return 'PNG';
  for (let at = 2; at + 4 <= bytes.length && bytes[at] === 0xff; at += 2 + ((bytes[at + 2] ?? 0) << 8) + (bytes[at + 3] ?? 0)) {
    if (bytes[at + 1] === 0xc2) return 'progressive JPEG';
    if (bytes[at + 1] === 0xc0 || bytes[at + 1] === 0xc1) return 'sequential JPEG';
  }
  return 'other';
}
const kinds = images.map(kind);
const keys = images.map((bytes) => createHash('sha1').update(bytes).digest('hex'));
const firstOfItsBytes = keys.map((key, i) => keys.indexOf(key) === i);

/** Per-image milliseconds of `run`, the best of two passes. */
async function perImage(run: (bytes: Uint8Array) => Promise<unknown>): Promise<number[]> {
  const best = images.map(() => Infinity);
  for (let pass = 0; pass < 2; pass++) {
    for (const [i, bytes] of images.entries()) {
      const started = performance.now();
      await run(bytes);
      best[i] = Math.min(best[i] ?? Infinity, performance.now() - started);
    }
  }
  return best;
}

const keep = { mode: 'keep' as const, quality: 90, maxSide: null, maxPixels: 89_478_485 };
const costs: Record<string, number[]> = {
  check: await perImage((bytes) => prepareImage(bytes, keep)),
  reencode: await perImage((bytes) => prepareImage(bytes, { ...keep, mode: 'jpeg', quality: 75 })),
};
const python = await pythonWithDatasets();
if ('skip' in python) {
  console.log(`Pillow: skipped (${python.skip}); the ceilings need it.`);
  process.exit(0);
}
const child = spawn(python.python, [path.join(ROOT, 'bench', 'image-costs.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
child.stdin.end(framed(images));
let out = '';
for await (const chunk of child.stdout) out += String(chunk);
Object.assign(costs, JSON.parse(out) as Record<string, number[]>);

/** Total milliseconds of a way over every row, or over each distinct image once. */
const total = (way: string, distinct = false, only?: string): number =>
  (costs[way] ?? []).reduce((sum, ms, i) => (distinct && !firstOfItsBytes[i]) || (only !== undefined && kinds[i] !== only) ? sum : sum + ms, 0);

console.log(`${images.length} rows, ${firstOfItsBytes.filter(Boolean).length} distinct images; ms an image, one core, best of two passes\n`);
console.log('| kind | rows | this tool: check | Pillow draft (limit) | Pillow load (plain keep) | this tool: q75 (sharp) | Pillow q75 (plain jpeg) |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const name of [...new Set(kinds)].sort()) {
  const rows = kinds.filter((k) => k === name).length;
  const cell = (way: string): string => (total(way, false, name) / rows).toFixed(2);
  console.log(`| ${name} | ${rows} | ${cell('check')} | ${cell('draft')} | ${cell('load')} | ${cell('reencode')} | ${cell('jpeg75')} |`);
}

// The second core: the bare check loop alone, then two at once.
const loop = async (): Promise<number> => (JSON.parse((await measureNode([LIMIT, input])).stdout) as { imagesPerSecond: number }).imagesPerSecond;
const alone = await loop();
const together = (await Promise.all([loop(), loop()])).reduce((sum, rate) => sum + rate, 0);
const cores = together / alone;

// One conversion at --num-proc 1 and 2: wall and the CPU of the whole process.
async function convertOnce(numProc: number): Promise<{ seconds: number; cpu: number }> {
  const output = path.join(ROOT, 'bench', '.cache', `bounds-out-${process.pid}`);
  const run = await measureNode([CLI, 'convert', '-i', input, '-o', output, '--overwrite', '--quiet', '--json', '--no-cache', '--num-proc', String(numProc)], { MALLOC_ARENA_MAX: '2' });
  await rm(output, { recursive: true, force: true });
  const report = JSON.parse(run.stdout) as ConvertReport;
  return { seconds: run.seconds, cpu: report.cpu.threads?.process ?? report.cpu.process };
}
const one = await convertOnce(1);
const two = await convertOnce(2);

const ratio = (value: number): string => `${value.toFixed(2)}×`;
console.log(`\nTwo bare check loops at once: ${ratio(cores)} one loop's rate.\n`);
console.log('| target | ceiling on this machine, if nothing but the image work cost anything | needed |');
console.log('| --- | --- | --- |');
console.log(`| 1. keep mode vs the plain script | ${ratio(total('load') / total('check', true))} | 2× |`);
console.log(`| 3. --num-proc 2 vs 1 | ${ratio(Math.min(cores, one.seconds / (two.cpu / cores)))}: ${two.cpu.toFixed(2)} s of CPU at --num-proc 2 cannot take less than ${(two.cpu / cores).toFixed(2)} s on ${cores.toFixed(2)} cores; --num-proc 1 took ${one.seconds.toFixed(2)} s | 1.8× |`);
console.log(`| 5. --images jpeg q75 vs the plain script | ${ratio(total('jpeg75') / total('reencode', true))} | 1.5× |`);
console.log(`| 7. efficiency | ${(total('draft') * cores / (2 * total('check', true))).toFixed(2)} | 0.7 |`);
