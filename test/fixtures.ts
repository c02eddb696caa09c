/** Shared test helpers: temporary directories, generated inputs, reading output back, running the CLI. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, mkdtempSync, openAsBlob } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import { RecordBatchReader, tableFromIPC, type Schema, type Table } from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { goodRows, picture } from '../scripts/bad-corpus.js';
import { writeSourceFile } from '../src/source/source-rows-to-arrow.js';

export { sourceRow } from '../scripts/bad-corpus.js';
import { makeSample } from '../src/source/make-sample.js';
import { cardForRepo } from '../src/output/load-line.js';
import { MARKER_FILE } from '../src/dirs/tool-marker.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'src', 'bin.js');

const made: string[] = [];
// Registered once, at import, on the file's root: an after() made inside a hook or test would run when that ends.
after(async () => {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
});

// Each test file has a cache of image work of its own (see image-store), never the user's: runs of one file may find
// what earlier runs of it prepared, as a user's re-runs do.
process.env.RLAIF_V_CACHE = mkdtempSync(path.join(tmpdir(), 'rlaif-v-cache-'));
made.push(process.env.RLAIF_V_CACHE);

/** A fresh directory, removed when the test file ends. */
export async function tempDir(prefix = 'rlaif-v-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A generated source dataset of small images, fast enough for the suite. */
export async function sampleDir(rows: number, options: { files?: number; seed?: number; rowGroupSize?: number; pageBytes?: number } = {}): Promise<string> {
  const dir = await tempDir('rlaif-v-sample-');
  await makeSample({ rows, output: dir, imageSide: 96, ...options });
  // Parquet files alone, as many local copies are: the tests that need a source card write one.
  await rm(path.join(dir, 'README.md'), { force: true });
  await rm(path.join(dir, MARKER_FILE), { force: true });
  return dir;
}

export interface ParquetInfo {
  schema: Schema;
  /** Footer key/value metadata. */
  keyValue: Map<string, string>;
  rowGroups: number[];
  rows: number;
  createdBy: string | undefined;
  table: Table;
}

/** Reads a whole parquet file back with parquet-wasm: its schema, footer metadata, row groups and data. */
export async function readParquet(file: string): Promise<ParquetInfo> {
  const parquet = await ParquetFile.fromFile(await openAsBlob(file));
  const metadata = parquet.metadata();
  const fileMetadata = metadata.fileMetadata();
  const rowGroups = metadata.rowGroups().map((group) => group.numRows());
  const reader = RecordBatchReader.from(parquet.schema().intoIPCStream());
  reader.open();
  const table = tableFromIPC((await parquet.read()).intoIPCStream());
  const info = {
    schema: reader.schema,
    keyValue: fileMetadata.keyValueMetadata() as Map<string, string>,
    rowGroups,
    rows: fileMetadata.numRows(),
    createdBy: fileMetadata.createdBy(),
    table,
  };
  parquet.free();
  return info;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with `args` and collects its output. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; onSpawn?: (child: ChildProcess) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    options.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}


/** A small deterministic image with some structure (the corpus's picture), encoded by `encode`. */
export async function makeImage(
  width: number,
  height: number,
  encode: (image: Sharp) => Sharp = (image) => image.jpeg({ quality: 90 }),
  channels: 3 | 4 = 3,
): Promise<Uint8Array> {
  return new Uint8Array(await encode(picture(channels, width, height)).toBuffer());
}

/** Mean absolute difference of two images' pixels (0 = identical), after decoding both to raw RGB. */
export async function imageDistance(a: Uint8Array, b: Uint8Array): Promise<number> {
  const decode = (bytes: Uint8Array) => sharp(bytes).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const [left, right] = await Promise.all([decode(a), decode(b)]);
  if (left.info.width !== right.info.width || left.info.height !== right.info.height) return Number.POSITIVE_INFINITY;
  let total = 0;
  for (let i = 0; i < left.data.length; i++) total += Math.abs((left.data[i] ?? 0) - (right.data[i] ?? 0));
  return total / left.data.length;
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** The distinct images of the bundled sample, in row order. */
export async function sampleImages(): Promise<Uint8Array[]> {
  const { table } = await readParquet(path.join(ROOT, 'sample', 'RLAIF-V-Dataset_000.parquet'));
  const bytes = table.getChild('image')?.getChild('bytes');
  const images = new Map<string, Uint8Array>();
  for (let i = 0; i < table.numRows; i++) {
    const value: unknown = bytes?.get(i);
    if (value instanceof Uint8Array) images.set(Buffer.from(value).toString('base64').slice(0, 200) + value.length, value.slice());
  }
  return [...images.values()];
}

/** The first image of each kind among `images` (format, channels, progressive, palette): the seeds of mutants. */
export async function oneOfEachKind(images: Uint8Array[]): Promise<Uint8Array[]> {
  const kinds = new Map<string, Uint8Array>();
  for (const bytes of images) {
    const metadata = await sharp(bytes).metadata();
    const kind = `${metadata.format}-${metadata.channels}-${metadata.isProgressive === true}-${metadata.isPalette === true}`;
    if (!kinds.has(kind)) kinds.set(kind, bytes);
  }
  return [...kinds.values()];
}

/** A file of an output, to compare with another output's: the card's load_dataset line, which names the directory, as `<output>`. */
export async function outputFile(dir: string, file: string): Promise<Buffer> {
  const bytes = await readFile(path.join(dir, file));
  return file === 'README.md' ? Buffer.from(cardForRepo(bytes.toString('utf8'), '<output>')) : bytes;
}

/**
 * Every file of a dataset directory but report.json (which has timings), with its bytes; the card's load_dataset line,
 * which names the directory, as if it were `<output>`, so that outputs in different directories compare.
 */
export async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const relative = path.relative(dir, path.join(entry.parentPath, entry.name));
    // The marker differs from run to run (its id and time): it says what made the directory, not what it holds.
    if (relative === 'report.json' || relative === MARKER_FILE) continue;
    files.set(relative, await outputFile(dir, relative));
  }
  return files;
}

/** Rewrites a directory's marker with `changes`, as a run at some step (or one that made it so) would have left it. */
export async function remark(dir: string, changes: Record<string, unknown>): Promise<void> {
  const file = path.join(dir, MARKER_FILE);
  await writeFile(file, JSON.stringify({ ...(JSON.parse(await readFile(file, 'utf8')) as object), ...changes }));
}

export function assertSameFiles(actual: Map<string, Buffer>, expected: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), what);
  for (const [name, bytes] of expected) assert.ok(actual.get(name)?.equals(bytes), `${what}: ${name} differs`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts a conversion in a process group of its own and kills the whole group with SIGKILL (the rlaif-v process and
 * the child that converts) `extraMs` after its first checkpoint is on disk. Resolves false when it finished first.
 */
export async function killAfterCheckpoint(args: string[], staging: string, extraMs: number): Promise<boolean> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore', detached: true });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  while (!done && !existsSync(path.join(staging, 'checkpoint.json'))) await sleep(5);
  if (!done) await sleep(extraMs);
  const killed = !done;
  if (killed) process.kill(-(child.pid ?? 0), 'SIGKILL');
  await exited;
  return killed;
}


/**
 * Writes `z-extra.parquet` into `dir`: 60 good rows of which some are then broken (a truncated JPEG every ninth row, a
 * blank answer every thirteenth), so that a conversion of `dir` has rejected rows, in its last file.
 */
export async function addRejectedRows(dir: string): Promise<void> {
  const rows = await goodRows(60);
  for (const [index, row] of rows.entries()) {
    if (index % 9 === 4) row.image = { bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]), path: 'broken.jpg' };
    if (index % 13 === 6) row.chosen = ' ';
  }
  await writeSourceFile(path.join(dir, 'z-extra.parquet'), rows, 20);
}
