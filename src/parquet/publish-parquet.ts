import { open, rename } from 'node:fs/promises';
import { OutputError } from '../errors.js';
import { readFooter } from './read-column-pages.js';

/**
 * Moves a written parquet file from `tmpPath` to `path` once its footer is shown to hold the `rows` rows it was given
 * (a writer that dropped rows, as parquet-wasm's streaming writer can, must not leave a file that looks whole).
 *
 * @throws {OutputError} `ERR_PARQUET_WRITE` when the footer disagrees.
 */
export async function publishParquet(tmpPath: string, path: string, rows: number): Promise<{ rows: number }> {
  const handle = await open(tmpPath, 'r');
  let written: number;
  try {
    written = Number((await readFooter(handle, (await handle.stat()).size)).num_rows);
  } finally {
    await handle.close();
  }
  if (written !== rows) {
    throw new OutputError(
      'ERR_PARQUET_WRITE',
      `${path}: the parquet writer stored ${written} rows but was given ${rows}; the file is not valid. This is a bug: please report it.`,
    );
  }
  await rename(tmpPath, path);
  return { rows: written };
}
