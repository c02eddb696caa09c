import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { isOurOutput } from '../dirs/output-dir.js';
import { MARKER_FILE } from '../dirs/tool-marker.js';
import { InputError } from '../errors.js';

/**
 * Every `.parquet` file under `dir`, in path order: regular files, and symbolic links to files (a Hugging Face cache
 * snapshot is a folder of links into `blobs/`).
 */
async function listParquet(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  // In an output of this tool, only data/ holds rows of the dataset: its rejects/ are rows it refused.
  const outputs: string[] = [];
  for (const entry of entries) {
    if ((entry.name === 'report.json' || entry.name === MARKER_FILE) && !outputs.includes(entry.parentPath) && (await isOurOutput(entry.parentPath))) outputs.push(entry.parentPath);
  }
  const files: string[] = [];
  for (const entry of entries) {
    if (!entry.name.endsWith('.parquet')) continue;
    const file = path.join(entry.parentPath, entry.name);
    if (outputs.some((output) => file.startsWith(`${output}${path.sep}`) && !file.startsWith(path.join(output, 'data') + path.sep))) continue;
    if (entry.isFile() || (entry.isSymbolicLink() && (await stat(file).catch(() => null))?.isFile() === true)) files.push(file);
  }
  return files.sort();
}

/** An input file given more than once (by two paths, or in a directory also given): read once, at its first place. */
export interface DuplicateInput {
  path: string;
  /** The path it was first given by. */
  sameAs: string;
}

/**
 * Expands directories to the parquet files inside them, keeping the order given; a file reached a second time (the
 * same file, whatever the path or link) is left out and told.
 *
 * @throws {InputError} `ERR_INPUT_MISSING` for a path that is not there, `ERR_INPUT_EMPTY` for a directory without
 * parquet files.
 */
export async function listInputs(inputs: readonly string[]): Promise<{ files: { path: string; root: string }[]; duplicates: DuplicateInput[] }> {
  const listed: { path: string; root: string }[] = [];
  for (const input of inputs) {
    let info;
    try {
      info = await stat(input);
    } catch (error) {
      throw new InputError('ERR_INPUT_MISSING', `${input}: no such file or directory. Check the --input path.`, {
        cause: error,
        file: input,
      });
    }
    if (info.isDirectory()) {
      const found = await listParquet(input);
      if (found.length === 0) {
        throw new InputError('ERR_INPUT_EMPTY', `${input}: the directory holds no .parquet files.`, { file: input });
      }
      listed.push(...found.map((file) => ({ path: file, root: path.resolve(input) })));
    } else {
      listed.push({ path: input, root: path.dirname(path.resolve(input)) });
    }
  }
  const seen = new Map<string, string>();
  const files: { path: string; root: string }[] = [];
  const duplicates: DuplicateInput[] = [];
  for (const { path: file, root } of listed) {
    // The same file by any path, link or hard link: the same device and inode.
    const info = await stat(file).catch(() => null);
    const identity = info === null ? path.resolve(file) : `${info.dev}:${info.ino}`;
    const first = seen.get(identity);
    if (first === undefined) {
      seen.set(identity, file);
      files.push({ path: file, root });
    } else duplicates.push({ path: file, sameAs: first });
  }
  return { files, duplicates };
}
