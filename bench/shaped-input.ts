/**
 * What bench:split and bench:rerun share: where the built CLI is, and their RLAIF-V-shaped input, generated once into
 * bench/.cache/ (`rows` rows in `files` files of one row group each, as the source appears to be; 640-pixel images, a
 * fifth of the rows reusing an image).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeSample } from '../src/source/make-sample.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'src', 'bin.js');

/** The directory of the input, made the first time it is asked for. */
export async function shapedInput(rows: number, files: number): Promise<string> {
  const input = path.join(ROOT, 'bench', '.cache', `split-${rows}x${files}`);
  if ((await readdir(input).catch(() => [])).filter((name) => name.endsWith('.parquet')).length === 0) {
    process.stderr.write(`Generating ${rows} rows in ${files} file(s) of one row group into ${input} (once)...\n`);
    await makeSample({ rows, files, output: input });
  }
  return input;
}
