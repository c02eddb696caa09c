import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { tableToIPC } from 'apache-arrow';
import { convert } from '../src/run/convert.js';
import { readSourceRows } from '../src/read/source-rows-from-arrow.js';
import { writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import type { ImagePolicy } from '../src/image/image-policy.js';
import type { SourceRow } from '../src/source/source-row.js';
import { readParquet, runCli, sampleDir, sourceRow, tempDir } from './fixtures.js';
import { prepareImage } from '../src/image/prepare-image.js';
import { imageCases } from '../scripts/bad-corpus.js';

/**
 * The stored pixels of an EXIF-tagged image, turned upright by explicit operations (not by sharp's auto-orientation,
 * which the code under test uses), then compared with what the tool made of it.
 */
async function assertUpright(input: Uint8Array, output: Uint8Array, orientation: number): Promise<void> {
  const steps: Record<number, { rotate: number; flop: boolean; flip: boolean }> = {
    2: { rotate: 0, flop: true, flip: false },
    3: { rotate: 180, flop: false, flip: false },
    4: { rotate: 0, flop: false, flip: true },
    5: { rotate: 90, flop: true, flip: false },
    6: { rotate: 90, flop: false, flip: false },
    7: { rotate: 270, flop: true, flip: false },
    8: { rotate: 270, flop: false, flip: false },
  };
  const step = steps[orientation];
  assert.ok(step !== undefined);
  // Pixels as stored, ignoring the tag (no auto-orientation: sharp only orients when rotate() is called without angle).
  const stored = await sharp(input).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let upright = await sharp(stored.data, { raw: stored.info }).rotate(step.rotate).raw().toBuffer({ resolveWithObject: true });
  if (step.flop || step.flip) {
    const mirrored = sharp(upright.data, { raw: upright.info });
    upright = await (step.flop ? mirrored.flop() : mirrored.flip()).raw().toBuffer({ resolveWithObject: true });
  }
  const made = await sharp(output).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([made.info.width, made.info.height], [upright.info.width, upright.info.height]);
  let difference = 0;
  for (let i = 0; i < made.data.length; i++) difference += Math.abs((made.data[i] ?? 0) - (upright.data[i] ?? 0));
  assert.ok(difference / made.data.length < 6, `orientation ${orientation}: mean difference ${difference / made.data.length}`);
}

const keep: ImagePolicy = { mode: 'keep', quality: 90, maxSide: null, maxPixels: 89_478_485 };

describe('every image of the corpus has its defined outcome in keep mode', async () => {
  for (const item of await imageCases()) {
    it(`${item.name}: ${item.expected.outcome}${item.expected.outcome === 'rejected' ? ` as ${item.expected.code}` : ''}`, async () => {
      assert.ok(item.bytes !== null);
      const result = await prepareImage(item.bytes, keep);
      const expected = item.expected;
      if (expected.outcome === 'rejected') {
        assert.equal(result.ok ? 'ok' : result.code, expected.code, result.ok ? '' : result.message);
        return;
      }
      assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.message}`);
      if (expected.outcome === 'kept') {
        assert.equal(result.reencoded, false);
        assert.equal(result.bytes, item.bytes);
        return;
      }
      assert.equal(result.reencoded, true);
      const metadata = await sharp(result.bytes, { failOn: 'error' }).metadata();
      assert.deepEqual([metadata.width, metadata.height], [expected.width, expected.height], 'upright, same size');
      assert.equal(metadata.orientation ?? 1, 1);
      assert.equal(metadata.depth, 'uchar');
      assert.ok(metadata.space === 'srgb' || metadata.space === 'b-w', String(metadata.space));
      assert.equal(metadata.pages ?? 1, 1);
      assert.equal(metadata.exif, undefined, 'metadata stripped');
      if (expected.format !== undefined) assert.equal(metadata.format, expected.format);
      else assert.ok(metadata.format === 'jpeg' || metadata.format === 'png');
      const orientation = /orientation-(\d)$/.exec(item.name)?.[1];
      if (orientation !== undefined) await assertUpright(item.bytes, result.bytes, Number(orientation));
    });
  }
});

describe('a sample salted with bad rows', () => {
  it('quarantines exactly the bad rows and writes every other row as a clean run does, byte for byte', async () => {
    const dir = await tempDir();
    const clean = await sampleDir(120, { rowGroupSize: 40 });
    const { table } = await readParquet(path.join(clean, 'RLAIF-V-Dataset_000.parquet'));
    const good = readSourceRows(tableToIPC(table, 'stream'), undefined);
    const bad: { row: SourceRow; code: string }[] = [];
    for (const item of await imageCases()) {
      if (item.expected.outcome === 'rejected') bad.push({ row: sourceRow(1000 + bad.length, { bytes: item.bytes, path: item.name }), code: item.expected.code });
    }
    bad.push({ row: sourceRow(1000 + bad.length, null), code: 'missing_image' });
    bad.push({ row: sourceRow(1000 + bad.length, { bytes: null, path: 'elsewhere.jpg' }), code: 'missing_image' });
    for (const field of ['question', 'chosen', 'rejected'] as const) {
      const image = good[0]?.image ?? null;
      bad.push({ row: sourceRow(1000 + bad.length, image, { [field]: null }), code: 'missing_text' });
      bad.push({ row: sourceRow(1000 + bad.length, image, { [field]: '  ' }), code: 'empty_text' });
    }
    const salted: SourceRow[] = [];
    good.forEach((row, index) => {
      salted.push(row);
      const extra = bad[index];
      if (extra !== undefined) salted.push(extra.row);
    });
    const input = path.join(dir, 'salted.parquet');
    await writeSourceFile(input, salted, 50);

    const options = { testSize: 0, maxRejectFraction: 1, writerBatchSize: 16 };
    const saltedReport = await convert({ input: [input], output: path.join(dir, 'salted'), ...options });
    const cleanReport = await convert({ input: [clean], output: path.join(dir, 'clean'), ...options });
    assert.equal(saltedReport.input.rows, good.length + bad.length);
    assert.equal(saltedReport.rejected.rows, bad.length);
    assert.equal(saltedReport.output.rows, cleanReport.output.rows);
    const files = (cleanReport.output.splits.train?.files ?? []).map((file) => file.file);
    assert.deepEqual((saltedReport.output.splits.train?.files ?? []).map((file) => file.file), files);
    for (const file of files) {
      assert.ok((await readFile(path.join(dir, 'salted', file))).equals(await readFile(path.join(dir, 'clean', file))), file);
    }
    const rejects = (await readParquet(path.join(dir, 'salted', 'rejects', 'rejects.parquet'))).table;
    const found = Array.from({ length: rejects.numRows }, (_, i) => rejects.get(i)?.toJSON() as Record<string, unknown>);
    assert.deepEqual(
      found.map((row) => [row.idx, row.error_code]),
      bad.map((item) => [item.row.idx, item.code]),
    );
  });
});

describe('rows that are odd but valid are converted with their text intact', () => {
  it('keeps 1 MB of text, non-ASCII and emoji, and both rows of a duplicated idx', async () => {
    const dir = await tempDir();
    const image = { bytes: (await imageCases())[0]?.bytes ?? null, path: null };
    const long = 'word '.repeat(200_000);
    const rows = [
      sourceRow(0, image, { question: long }),
      sourceRow(1, image, { question: 'Qu’est-ce que c’est ? 这是什么？ 🤔🐈', chosen: 'Ein Kätzchen 😺' }),
      sourceRow(2, image, { idx: '7' }),
      sourceRow(3, image, { idx: '7' }),
    ];
    const input = path.join(dir, 'odd.parquet');
    await writeSourceFile(input, rows);
    const report = await convert({ input: [input], output: path.join(dir, 'out'), testSize: 0 });
    assert.equal(report.output.rows, 4);
    const { table } = await readParquet(path.join(dir, 'out', 'data', 'train-00000-of-00001.parquet'));
    const text = (i: number, column: string, message: number, part: number): unknown =>
      (table.get(i)?.toJSON()[column] as { get(i: number): { toJSON(): { content: { get(i: number): { toJSON(): { text: unknown } } } } } })
        .get(message)
        .toJSON()
        .content.get(part)
        .toJSON().text;
    assert.equal(text(0, 'prompt', 0, 1), long);
    assert.equal(text(1, 'prompt', 0, 1), 'Qu’est-ce que c’est ? 这是什么？ 🤔🐈');
    assert.equal(text(1, 'chosen', 0, 0), 'Ein Kätzchen 😺');
  });
});

describe('--on-bad-image fail', () => {
  it('stops at the first bad image, exit code 1, naming the row, and writes nothing', async () => {
    const dir = await tempDir();
    const cases = await imageCases();
    const truncated = cases.find((item) => item.name === 'jpeg-truncated');
    const rows = [sourceRow(0, { bytes: cases[0]?.bytes ?? null, path: null }), sourceRow(1, { bytes: truncated?.bytes ?? null, path: null })];
    const input = path.join(dir, 'in.parquet');
    await writeSourceFile(input, rows);
    const result = await runCli(['convert', '--input', input, '--output', path.join(dir, 'out'), '--on-bad-image', 'fail', '--quiet']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Row 1 \(idx "1"\) has a bad image: corrupt_image/);
    assert.deepEqual((await readdir(dir)).sort(), ['in.parquet']);
  });
});
