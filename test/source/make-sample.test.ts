import assert from 'node:assert/strict';
import { open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { OutputError } from '../../src/errors.js';
import { makeSample } from '../../src/source/make-sample.js';
import { sourceSchema } from '../../src/source/source-schema.js';
import { readFooter, scanColumnPages } from '../../src/parquet/read-column-pages.js';
import { readParquet, ROOT, tempDir } from '../support/fixtures.js';

describe('makeSample', () => {
  it('writes the exact source schema and huggingface metadata of openbmb/RLAIF-V-Dataset', async () => {
    const dir = await tempDir();
    await makeSample({ rows: 20, output: dir, imageSide: 64 });
    const { schema, keyValue, rows } = await readParquet(path.join(dir, 'RLAIF-V-Dataset_000.parquet'));
    const expected = sourceSchema();
    assert.deepEqual(
      schema.fields.map((field) => `${field.name}: ${String(field.type)}`),
      expected.fields.map((field) => `${field.name}: ${String(field.type)}`),
    );
    assert.equal(keyValue.get('huggingface'), expected.metadata.get('huggingface'));
    assert.equal(rows, 20);
  });

  it('draws images shaped like the source with profile source: nine in ten JPEG, PNGs many times larger', async () => {
    const dir = await tempDir();
    await makeSample({ rows: 200, output: dir, imageSide: 128, profile: 'source', repeatFraction: 0 });
    const { table } = await readParquet(path.join(dir, 'RLAIF-V-Dataset_000.parquet'));
    const sizes = { jpeg: [] as number[], png: [] as number[] };
    for (const row of table.getChild('image') ?? []) {
      const bytes = (row as { bytes: Uint8Array } | null)?.bytes;
      if (bytes !== undefined) (bytes[0] === 0xff ? sizes.jpeg : sizes.png).push(bytes.byteLength);
    }
    const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
    assert.ok(sizes.jpeg.length >= 165 && sizes.jpeg.length <= 195, `${sizes.jpeg.length} JPEG of 200`);
    assert.ok(mean(sizes.png) > 6 * mean(sizes.jpeg), `PNG ${mean(sizes.png)} against JPEG ${mean(sizes.jpeg)} bytes`);
    await assert.rejects(makeSample({ rows: 2, output: dir, profile: 'photos' as never, overwrite: true }), /profile/);
  });

  it('makes pages as large as pageBytes says (pyarrow makes them of 1,024 images)', async () => {
    const dir = await tempDir();
    await makeSample({ rows: 300, output: dir, imageSide: 64, repeatFraction: 0, pageBytes: 2 ** 24 });
    const file = path.join(dir, 'RLAIF-V-Dataset_000.parquet');
    const handle = await open(file, 'r');
    try {
      const column = await scanColumnPages(handle, await readFooter(handle, (await stat(file)).size), 0, ['image', 'bytes']);
      assert.equal(column.dictionary?.header.dictionary_page_header?.num_values, 300, 'every image in one dictionary page');
    } finally {
      await handle.close();
    }
  });

  it('tells its progress as it writes, up to every row, and writes a card of its own', async () => {
    const dir = await tempDir();
    const seen: [number, number][] = [];
    await makeSample({ rows: 150, files: 2, output: dir, imageSide: 32, onProgress: (done, total) => seen.push([done, total]) });
    assert.ok(seen.length >= 3, JSON.stringify(seen));
    assert.ok(seen.every(([done, total], index) => total === 150 && done >= (seen[index - 1]?.[0] ?? 0)), JSON.stringify(seen));
    assert.deepEqual(seen.at(-1), [150, 150]);
    assert.match(await readFile(path.join(dir, 'README.md'), 'utf8'), /^---\nlicense: apache-2\.0\npretty_name: Synthetic RLAIF-V sample\n---\n/);
  });

  it('gives the same bytes for the same seed and different bytes for another seed', async () => {
    const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()];
    await makeSample({ rows: 30, output: a, imageSide: 64, seed: 5 });
    await makeSample({ rows: 30, output: b, imageSide: 64, seed: 5 });
    await makeSample({ rows: 30, output: c, imageSide: 64, seed: 6 });
    const read = (dir: string) => readFile(path.join(dir, 'RLAIF-V-Dataset_000.parquet'));
    assert.ok((await read(a)).equals(await read(b)));
    assert.ok(!(await read(a)).equals(await read(c)));
  });

  it('spreads rows over files and row groups, with real JPEG and PNG images of several modes, some repeated', async () => {
    const dir = await tempDir();
    const report = await makeSample({ rows: 120, output: dir, imageSide: 64, files: 3, rowGroupSize: 16 });
    assert.equal(report.files.length, 3);
    assert.ok(report.distinctImages < 120 && report.distinctImages > 60, `${report.distinctImages} distinct images`);
    const formats = new Set<string>();
    let rows = 0;
    for (const file of report.files) {
      const { table, rowGroups } = await readParquet(file);
      assert.deepEqual(rowGroups, [16, 16, 8]);
      rows += table.numRows;
      for (let i = 0; i < table.numRows; i++) {
        const image = (table.get(i)?.toJSON().image as { toJSON(): { bytes: Uint8Array } }).toJSON();
        const metadata = await sharp(image.bytes).metadata();
        formats.add(`${metadata.format}/${metadata.space}/${metadata.channels}${metadata.isPalette ? '/palette' : ''}`);
      }
    }
    assert.equal(rows, 120);
    for (const kind of ['jpeg/srgb/3', 'jpeg/b-w/1', 'png/srgb/3', 'png/srgb/4']) assert.ok(formats.has(kind), `${kind} in ${[...formats].join(' ')}`);
  });

  it('with overwrite and fewer files, removes the earlier sample\'s extra files (only in a directory it made)', async () => {
    const dir = path.join(await tempDir(), 'sample');
    await makeSample({ rows: 15, files: 3, output: dir, imageSide: 16 });
    await makeSample({ rows: 10, files: 2, output: dir, imageSide: 16, overwrite: true });
    assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.parquet')).sort(), ['RLAIF-V-Dataset_000.parquet', 'RLAIF-V-Dataset_001.parquet']);
    // A directory this tool did not make keeps its files: the run is refused instead.
    const mine = await tempDir();
    await writeFile(path.join(mine, 'RLAIF-V-Dataset_004.parquet'), 'the user\'s');
    await assert.rejects(makeSample({ rows: 4, output: mine, imageSide: 16, overwrite: true }), /holds RLAIF-V-Dataset_004\.parquet, which a sample of 1 file\(s\) would not replace.*not made by rlaif-v sample/);
    assert.equal(await readFile(path.join(mine, 'RLAIF-V-Dataset_004.parquet'), 'utf8'), 'the user\'s');
  });

  it('refuses to overwrite a sample file unless told to', async () => {
    const dir = await tempDir();
    await makeSample({ rows: 2, output: dir, imageSide: 16 });
    await assert.rejects(makeSample({ rows: 2, output: dir, imageSide: 16 }), OutputError);
    await makeSample({ rows: 2, output: dir, imageSide: 16, overwrite: true });
  });
});

describe('the bundled sample', () => {
  it('is what `npm run sample:bundled` generates (regenerate it after changing the generator)', async () => {
    const dir = await tempDir();
    await makeSample({ rows: 200, output: dir, imageSide: 256, seed: 42 });
    const bundled = await readFile(path.join(ROOT, 'sample', 'RLAIF-V-Dataset_000.parquet'));
    assert.ok(bundled.equals(await readFile(path.join(dir, 'RLAIF-V-Dataset_000.parquet'))));
  });
});
