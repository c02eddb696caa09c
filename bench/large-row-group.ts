/**
 * A large input file that is a single row group (what the real source files appear to be) converts, and how much
 * memory that takes: `npm run bench:large -- [--size-mb 1024] [--num-proc 2]`.
 *
 * Generates the file once into bench/.cache/ (reused on later runs), converts it in a child process and reports its
 * peak RSS next to the peak of converting the same rows cut into 100-row row groups.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeSample } from '../src/make-sample.js';
import { measureNode } from './measure-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'bin.js');

const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '1024' },
    'num-proc': { type: 'string', default: '2' },
    'image-side': { type: 'string', default: '640' },
  },
});
const sizeMb = Number(values['size-mb']);
const imageSide = Number(values['image-side']);

/** Rows that make about `sizeMb` of images at this side (measured on a small sample first). */
async function rowsFor(dir: string): Promise<number> {
  const probe = path.join(dir, 'probe');
  const report = await makeSample({ rows: 200, output: probe, imageSide, repeatFraction: 0, overwrite: true });
  await rm(probe, { recursive: true, force: true });
  return Math.ceil((sizeMb * 1e6) / (report.bytes / 200));
}

async function ensureInput(kind: 'single' | 'groups', rows: number, dir: string): Promise<string> {
  const target = path.join(dir, `${kind}-${sizeMb}mb`);
  const exists = (await readdir(target).catch(() => [])).length > 0;
  if (!exists) {
    process.stderr.write(`Generating ${rows} rows (${kind === 'single' ? 'one row group' : '100-row row groups'}) in ${target}...\n`);
    await makeSample({ rows, output: target, imageSide, repeatFraction: 0, rowGroupSize: kind === 'single' ? undefined : 100 });
  }
  return target;
}

const cache = path.join(ROOT, 'bench', '.cache');
await mkdir(cache, { recursive: true });
const rows = await rowsFor(cache);
for (const kind of ['single', 'groups'] as const) {
  const input = await ensureInput(kind, rows, cache);
  const bytes = (await stat(path.join(input, 'RLAIF-V-Dataset_000.parquet'))).size;
  const output = path.join(cache, `out-${kind}`);
  // With MALLOC_ARENA_MAX set, bin.js runs the conversion in this very process (no relaunch), as it runs for users.
  const run = await measureNode(
    [CLI, 'convert', '--input', input, '--output', output, '--overwrite', '--quiet', '--json', '--no-cache', '--num-proc', values['num-proc'] ?? '2'],
    { MALLOC_ARENA_MAX: '2' },
  );
  await rm(output, { recursive: true, force: true });
  // The input may have been made by an earlier run with other images: count its rows from the report.
  const converted = run.code === 0 ? (JSON.parse(run.stdout) as { input: { rows: number } }).input.rows : rows;
  const line = {
    input: kind === 'single' ? 'one row group' : '100-row row groups',
    fileMB: Math.round(bytes / 1e6),
    rows: converted,
    numProc: Number(values['num-proc']),
    exitCode: run.code,
    seconds: Math.round(run.seconds * 10) / 10,
    rowsPerSecond: Math.round(converted / run.seconds),
    peakRssMB: Math.round(run.peakRss / 1e6),
  };
  console.log(JSON.stringify(line));
  if (run.code !== 0) process.stderr.write(run.stderr);
}
