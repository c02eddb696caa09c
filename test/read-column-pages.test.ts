import assert from 'node:assert/strict';
import { open, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { pythonWithDatasets, run } from '../src/bench/python-env.js';
import { pageRange } from '../src/read/page-range.js';
import { isStreamable, readColumnPages, readFooter, scanColumnPages } from '../src/parquet/read-column-pages.js';
import { readImagePages } from '../src/read/read-image-pages.js';
import { writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import type { SourceRow } from '../src/source/source-row.js';
import { sourceRow, tempDir } from './fixtures.js';

/** The image of row i: null every 37th row, bytes null (path kept) every 41st, else bytes of a length and pattern set by i. */
function expectedImage(i: number): { bytes: Uint8Array | null; path: string | null } | null {
  if (i % 37 === 5) return null;
  if (i % 41 === 7) return { bytes: null, path: `p${i}.jpg` };
  const bytes = new Uint8Array(500 + ((i * 97) % 3000));
  for (let k = 0; k < bytes.length; k++) bytes[k] = (i * 131 + k * 7 + ((k * k) >> 3)) & 255;
  return { bytes, path: i % 3 === 0 ? `p${i}.jpg` : null };
}

async function readAll(file: string, column: string[]): Promise<{ values: (Uint8Array | string | null)[]; pages: number }> {
  const handle = await open(file, 'r');
  try {
    const footer = await readFooter(handle, (await stat(file)).size);
    const values: (Uint8Array | string | null)[] = [];
    let pages = 0;
    for (let group = 0; group < footer.row_groups.length; group++) {
      assert.ok(isStreamable(footer, group, column), `${path.basename(file)} ${column.join('.')} row group ${group}`);
      for await (const page of readColumnPages(handle, footer, group, column)) {
        values.push(...page);
        pages++;
      }
    }
    return { values, pages };
  } finally {
    await handle.close();
  }
}

/**
 * The image bytes as workers read them: pages listed by their headers, then read for batches of `batch` rows (which
 * start and end inside pages), each batch on its own.
 */
async function readInBatches(file: string, batch: number): Promise<(Uint8Array | null)[]> {
  const handle = await open(file, 'r');
  try {
    const footer = await readFooter(handle, (await stat(file)).size);
    const values: (Uint8Array | null)[] = [];
    for (let group = 0; group < footer.row_groups.length; group++) {
      const pages = await scanColumnPages(handle, footer, group, ['image', 'bytes']);
      const rows = Number(footer.row_groups[group]?.num_rows ?? 0);
      for (let first = 0; first < rows; first += batch) values.push(...readImagePages(pageRange(file, pages, first, Math.min(batch, rows - first))));
    }
    return values;
  } finally {
    await handle.close();
  }
}

function checkValues(file: string, rows: number, bytes: (Uint8Array | string | null)[], paths: (Uint8Array | string | null)[]): void {
  assert.equal(bytes.length, rows, file);
  assert.equal(paths.length, rows, file);
  for (let i = 0; i < rows; i++) {
    const image = expectedImage(i);
    assert.deepEqual(bytes[i], image?.bytes ?? null, `${file} row ${i} bytes`);
    assert.equal(paths[i], image?.path ?? null, `${file} row ${i} path`);
  }
}

describe('readColumnPages on files this tool writes', () => {
  it('reads image bytes and paths page by page, nulls at both levels included', async () => {
    const file = path.join(await tempDir(), 'source.parquet');
    const rows: SourceRow[] = Array.from({ length: 300 }, (_, i) => sourceRow(i, expectedImage(i)));
    await writeSourceFile(file, rows, 128);
    const bytes = await readAll(file, ['image', 'bytes']);
    const paths = await readAll(file, ['image', 'path']);
    checkValues(file, 300, bytes.values, paths.values);
    for (const batch of [1, 7, 128]) checkValues(`${file} in batches of ${batch}`, 300, await readInBatches(file, batch), paths.values);
  });
});

const PYARROW_FILES = String.raw`
import sys, pyarrow as pa, pyarrow.parquet as pq
out = sys.argv[1]
rows = []
for i in range(400):
    if i % 37 == 5: image = None
    elif i % 41 == 7: image = {"bytes": None, "path": f"p{i}.jpg"}
    else:
        n = 500 + (i * 97) % 3000
        image = {"bytes": bytes(((i * 131 + k * 7 + ((k * k) >> 3)) & 255) for k in range(n)), "path": f"p{i}.jpg" if i % 3 == 0 else None}
    rows.append({"question": f"q{i}", "image": image})
schema = pa.schema([("question", pa.string()), ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))])
table = pa.Table.from_pylist(rows, schema=schema)
for codec in ["NONE", "SNAPPY", "GZIP", "ZSTD", "BROTLI", "LZ4"]:
    for version in ["1.0", "2.0"]:
        for dictionary in [False, True]:
            pq.write_table(table, f"{out}/{codec}-v{version}-dict{int(dictionary)}.parquet", compression=codec,
                data_page_version=version, use_dictionary=dictionary, data_page_size=16384, write_batch_size=16,
                row_group_size=150)
print("written")
`;

describe('readColumnPages on files pyarrow writes', () => {
  let dir = '';
  let skip = '';

  before(async () => {
    const python = await pythonWithDatasets();
    if ('skip' in python) {
      skip = python.skip;
      console.log(`# skipping pyarrow files: ${skip}`);
      return;
    }
    dir = await tempDir();
    await writeFile(path.join(dir, 'make.py'), PYARROW_FILES);
    await run(python.python, [path.join(dir, 'make.py'), dir]);
  });

  for (const codec of ['NONE', 'SNAPPY', 'GZIP', 'ZSTD', 'BROTLI', 'LZ4']) {
    it(`reads ${codec} files, data page v1 and v2, with and without dictionary, over many pages`, async (t) => {
      if (skip !== '') {
        t.skip(skip);
        return;
      }
      for (const version of ['1.0', '2.0']) {
        for (const dictionary of [0, 1]) {
          const file = path.join(dir, `${codec}-v${version}-dict${dictionary}.parquet`);
          const bytes = await readAll(file, ['image', 'bytes']);
          const paths = await readAll(file, ['image', 'path']);
          // Without a dictionary the values span many data pages; with one, they sit in its dictionary page.
          if (dictionary === 0) assert.ok(bytes.pages > 6, `${file}: ${bytes.pages} pages`);
          checkValues(file, 400, bytes.values, paths.values);
          checkValues(`${file} in batches of 13`, 400, await readInBatches(file, 13), paths.values);
        }
      }
    });
  }
});
