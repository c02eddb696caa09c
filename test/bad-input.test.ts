import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { Field, Int64, Schema, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { convert } from '../src/convert.js';
import { InputError } from '../src/errors.js';
import { SOURCE_COLUMNS, sourceSchema } from '../src/output-schema.js';
import { ParquetSink } from '../src/parquet-sink.js';
import { sourceColumns, writeSourceFile } from '../src/source-table.js';
import type { SourceRow } from '../src/types.js';
import { makeImage, readJson, readParquet, runCli, sampleDir, sourceRow, tempDir } from './fixtures.js';

/** Writes rows with some source columns replaced or dropped, to make schema problems. */
async function writeTable(file: string, columns: Record<string, Vector>): Promise<void> {
  const fields = Object.entries(columns).map(([name, vector]) => new Field(name, vector.type, true));
  const sink = await ParquetSink.open(file, { rowGroupSize: 100, metadata: new Map() });
  await sink.write(tableToIPC(new Table(new Schema(fields), columns), 'stream'));
  await sink.close();
}

async function goodRows(count: number): Promise<SourceRow[]> {
  const rows: SourceRow[] = [];
  for (let i = 0; i < count; i++) rows.push(sourceRow(i, { bytes: await makeImage(24 + i, 24), path: `${i}.jpg` }));
  return rows;
}

describe('file problems stop the run before any work, exit code 2, naming the file', () => {
  let dir: string;
  let good: string;

  before(async () => {
    dir = await tempDir();
    good = path.join(dir, 'good.parquet');
    await writeSourceFile(good, await goodRows(5));
  });

  async function expectInputError(inputs: string[], code: string, pattern: RegExp, extra: string[] = []): Promise<void> {
    const output = path.join(dir, `out-${code}`);
    const result = await runCli(['convert', ...inputs.flatMap((input) => ['--input', input]), '--output', output, '--quiet', ...extra]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, pattern);
    assert.ok(!(await readdir(dir)).some((name) => name.startsWith(`out-${code}`)), 'no output, not even a partial one');
    await assert.rejects(
      convert({ input: inputs, output, ...(extra.length > 0 ? { maxRowGroupBytes: extra[1] } : {}) }),
      (error: unknown) => error instanceof InputError && error.code === code,
    );
  }

  it('a missing file', async () => {
    const missing = path.join(dir, 'nope.parquet');
    await expectInputError([good, missing], 'ERR_INPUT_MISSING', /nope\.parquet: no such file/);
  });

  it('a file that is not parquet', async () => {
    const text = path.join(dir, 'text.parquet');
    await writeFile(text, 'ds_name,question\nRLAIF-V,what?\n'.repeat(10));
    await expectInputError([good, text], 'ERR_NOT_PARQUET', /text\.parquet: not a parquet file/);
  });

  it('a file cut short (its footer is gone)', async () => {
    const cut = path.join(dir, 'cut.parquet');
    const bytes = await readFile(good);
    await writeFile(cut, bytes.subarray(0, bytes.length - 50));
    await expectInputError([cut], 'ERR_PARQUET_TRUNCATED', /cut\.parquet: the parquet file is truncated/);
  });

  it('a footer that does not parse', async () => {
    const broken = path.join(dir, 'broken.parquet');
    const bytes = Buffer.from(await readFile(good));
    const footerLength = bytes.readUInt32LE(bytes.length - 8);
    bytes.fill(0xff, bytes.length - 8 - footerLength, bytes.length - 8);
    await writeFile(broken, bytes);
    await expectInputError([broken], 'ERR_PARQUET_FOOTER', /broken\.parquet: the parquet footer cannot be read/);
  });

  it('a missing column', async () => {
    const file = path.join(dir, 'no-question.parquet');
    const columns = sourceColumns(await goodRows(3));
    delete columns.question;
    await writeTable(file, columns);
    await expectInputError([good, file], 'ERR_MISSING_COLUMN', /no-question\.parquet: missing column question/);
  });

  it('a column of the wrong type', async () => {
    const file = path.join(dir, 'int-question.parquet');
    const columns = sourceColumns(await goodRows(3));
    columns.question = vectorFromArray([1n, 2n, 3n], new Int64());
    await writeTable(file, columns);
    await expectInputError([file], 'ERR_COLUMN_TYPE', /int-question\.parquet: column question is Int64, expected string/);
  });

  it('an image column that is not a datasets Image', async () => {
    const file = path.join(dir, 'string-image.parquet');
    const columns = sourceColumns(await goodRows(3));
    columns.image = vectorFromArray(['a', 'b', 'c'], new Utf8());
    await writeTable(file, columns);
    await expectInputError([file], 'ERR_COLUMN_TYPE', /string-image\.parquet: column image is Utf8, expected struct<bytes: binary, path: string>/);
  });

  it('no rows at all', async () => {
    const empty = path.join(dir, 'empty.parquet');
    await writeSourceFile(empty, []);
    await expectInputError([empty], 'ERR_INPUT_EMPTY', /holds no rows/);
  });

  it('a row group too large to load, refused before reading it', async () => {
    await expectInputError([good], 'ERR_ROW_GROUP_TOO_LARGE', /good\.parquet: row group 0 holds .* over the 1\.0 KiB/, [
      '--max-row-group-bytes',
      '1KiB',
    ]);
  });
});

describe('extra columns and files that differ only in extra columns', () => {
  it('ignores extra columns', async () => {
    const dir = await tempDir();
    const rows = await goodRows(6);
    const columns = { ...sourceColumns(rows), extra: vectorFromArray(rows.map(() => 'x'), new Utf8()) };
    await writeTable(path.join(dir, 'extra.parquet'), columns);
    await writeSourceFile(path.join(dir, 'plain.parquet'), rows);
    const report = await convert({ input: [dir], output: path.join(dir, 'out'), testSize: 2 });
    assert.equal(report.output.rows, 12);
    assert.deepEqual(sourceSchema().fields.map((field) => field.name), [...SOURCE_COLUMNS]);
  });
});

describe('rows that cannot be converted are quarantined, not fatal', () => {
  let dir: string;
  let input: string;
  const bad = new Map<number, string>();

  before(async () => {
    dir = await tempDir();
    const rows = await goodRows(40);
    const jpeg = await makeImage(200, 200);
    const replace = (index: number, code: string, row: Partial<SourceRow>): void => {
      rows[index] = { ...(rows[index] as SourceRow), ...row };
      bad.set(index, code);
    };
    replace(3, 'corrupt_image', { image: { bytes: jpeg.subarray(0, jpeg.length >> 1), path: 'cut.jpg' } });
    replace(9, 'unsupported_image', { image: { bytes: new Uint8Array(64).fill(7), path: 'noise.jpg' } });
    replace(17, 'missing_image', { image: null });
    replace(18, 'missing_image', { image: { bytes: null, path: 'elsewhere.jpg' } });
    replace(25, 'missing_text', { question: null });
    replace(31, 'empty_image', { image: { bytes: new Uint8Array(0), path: 'empty.jpg' } });
    input = path.join(dir, 'salted.parquet');
    await writeSourceFile(input, rows, 16);
  });

  it('writes each bad row whole to rejects/ with its code, and converts the rest', async () => {
    const output = path.join(dir, 'out');
    const result = await runCli(['convert', '--input', input, '--output', output, '--quiet', '--max-reject-fraction', '0.5', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { rejected: { rows: number; byCode: Record<string, number> }; output: { rows: number } };
    assert.equal(report.rejected.rows, bad.size);
    assert.equal(report.output.rows + report.rejected.rows, 40);
    assert.deepEqual(report.rejected.byCode, { corrupt_image: 1, empty_image: 1, missing_image: 2, missing_text: 1, unsupported_image: 1 });

    const { table, keyValue } = await readParquet(path.join(output, 'rejects/rejects.parquet'));
    assert.ok(keyValue.has('huggingface'));
    const rejected = Array.from({ length: table.numRows }, (_, i) => table.get(i)?.toJSON() as Record<string, unknown>);
    assert.deepEqual(
      rejected.map((row) => [Number(row.row_index), row.error_code]),
      [...bad].map(([index, code]) => [index, code]),
    );
    for (const row of rejected) {
      assert.equal(row.idx, String(row.row_index), 'the original row, unchanged');
      assert.equal(typeof row.error_message, 'string');
    }
    const cut = rejected.find((row) => row.error_code === 'corrupt_image');
    assert.equal((cut?.image as { toJSON(): { path: string } }).toJSON().path, 'cut.jpg');
  });

  it('exits 1 when more rows are rejected than --max-reject-fraction allows, still writing a complete output', async () => {
    const output = path.join(dir, 'strict');
    const result = await runCli(['convert', '--input', input, '--output', output]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /rows were rejected, over --max-reject-fraction 0\.001/);
    const report = await readJson<{ ok: boolean; rejected: { rows: number } }>(path.join(output, 'report.json'));
    assert.equal(report.ok, false);
    assert.equal(report.rejected.rows, bad.size);
  });
});

describe('CLI usage errors', () => {
  it('exits 2 with the option named for a bad value', async () => {
    const dir = await sampleDir(4);
    const result = await runCli(['convert', '--input', dir, '--output', path.join(dir, 'o'), '--num-proc', '0']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Expected positive integer for --num-proc but received 0/);
  });

  it('exits 2 for an unknown option and for a missing command', async () => {
    assert.equal((await runCli(['convert', '--input', 'x', '--output', 'y', '--bogus'])).code, 2);
    assert.equal((await runCli([])).code, 2);
  });

  it('prints help for every command', async () => {
    for (const args of [['--help'], ['convert', '--help'], ['sample', '--help']]) {
      const result = await runCli(args);
      assert.equal(result.code, 0);
      assert.match(result.stdout, /--/);
    }
  });
});
