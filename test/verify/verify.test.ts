import assert from 'node:assert/strict';
import { cp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { convert } from '../../src/run/convert.js';
import { verify, type VerifyReport } from '../../src/verify/verify.js';
import { addRejectedRows, readParquet, runCli, sampleDir, tempDir } from '../support/fixtures.js';
import { parquetMetadata } from 'hyparquet';

/** A copy of the converted output, to damage. */
async function copyOf(output: string): Promise<string> {
  const copy = path.join(await tempDir(), 'copy');
  await cp(output, copy, { recursive: true });
  return copy;
}

function codes(report: VerifyReport): string[] {
  return report.problems.map((problem) => problem.code);
}

describe('verify', () => {
  let output: string;
  let shards: string[];

  before(async () => {
    const input = await sampleDir(300, { files: 2 });
    output = path.join(await tempDir(), 'out');
    const report = await convert({ input: [input], output, testSize: 0.1, maxShardSize: '400KB', numProc: 2 });
    shards = report.output.splits.train?.files.map((file) => file.file) ?? [];
    assert.ok(shards.length >= 3, 'several train shards');
  });

  it('finds nothing wrong with an output as written, and says so on the command line', async () => {
    const report = await verify({ dir: output, numProc: 2 });
    assert.deepEqual(report.problems, []);
    assert.equal(report.ok, true);
    assert.equal(report.images.checked, 300);
    assert.equal(report.splits.train?.files, shards.length);
    const result = await runCli(['verify', output]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /all holds\. 270 train rows in \d+ shard\(s\), 30 test rows in 1 shard\(s\); 300 images decode\./);
  });

  it('catches a shard cut short, and says which', async () => {
    const copy = await copyOf(output);
    const shard = shards[1] ?? '';
    await truncate(path.join(copy, shard), 5000);
    const report = await verify({ dir: copy, numProc: 2 });
    assert.deepEqual(codes(report).sort(), ['shard_changed', 'shard_damaged']);
    assert.match(report.problems.find((problem) => problem.code === 'shard_damaged')?.message ?? '', new RegExp(`${shard} is cut short: it does not end with PAR1`));
    const result = await runCli(['verify', copy]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /has 2 problem\(s\):\n {2}shard_damaged: data\/train-00001-of-\d+\.parquet is cut short/);
  });

  it('catches an image whose bytes no longer decode, naming the file and row', async () => {
    const copy = await copyOf(output);
    const shard = shards[0] ?? '';
    const file = path.join(copy, shard);
    // The image of row 7, found in the file by its bytes, its second half overwritten where it lies.
    const { table } = await readParquet(file);
    const image = (table.get(7)?.toJSON().images as { toJSON(): { bytes: Uint8Array }[] }).toJSON()[0]?.bytes ?? new Uint8Array();
    const bytes = await readFile(file);
    const at = bytes.indexOf(Buffer.from(image));
    assert.ok(at > 0 && image.byteLength > 1000);
    bytes.fill(0x5a, at + Math.floor(image.byteLength / 2), at + image.byteLength - 2);
    await writeFile(file, bytes);
    const report = await verify({ dir: copy, numProc: 2 });
    const bad = report.problems.filter((problem) => problem.code === 'bad_image');
    assert.equal(bad.length, 1, JSON.stringify(report.problems));
    assert.equal(bad[0]?.where, `${shard} row 7`);
    assert.match(bad[0]?.message ?? '', /row 7: the (jpeg|png) image does not decode/);
    assert.ok(codes(report).includes('shard_changed'));
  });

  it('catches a damaged text page, without report.json to compare against', async () => {
    const copy = await copyOf(output);
    await rm(path.join(copy, 'report.json'));
    const shard = shards[0] ?? '';
    const file = path.join(copy, shard);
    const bytes = await readFile(file);
    const metadata = parquetMetadata(new Uint8Array(bytes));
    const chunk = metadata.row_groups[0]?.columns.find((column) => column.meta_data?.path_in_schema.join('.') === 'chosen.list.element.content.list.element.text')?.meta_data;
    assert.ok(chunk !== undefined);
    const start = Number(chunk.dictionary_page_offset ?? chunk.data_page_offset);
    bytes.fill(0xa5, start + 20, start + Number(chunk.total_compressed_size) - 4);
    await writeFile(file, bytes);
    const report = await verify({ dir: copy, numProc: 2 });
    assert.deepEqual(codes(report), ['shard_damaged'], JSON.stringify(report.problems));
    assert.match(report.problems[0]?.message ?? '', new RegExp(`${shard}: row group 0 cannot be read`));
    assert.deepEqual(report.notes, ['no report.json: rows were not checked against what was written']);
  });

  it('says what is wrong with a card whose YAML does not parse, and reads one with CRLF line ends', async () => {
    const copy = await copyOf(output);
    const card = await readFile(path.join(copy, 'README.md'), 'utf8');
    await writeFile(path.join(copy, 'README.md'), card.replace(/\n/g, '\r\n'));
    assert.deepEqual((await verify({ dir: copy, numProc: 2 })).problems, []);
    await writeFile(path.join(copy, 'README.md'), card.replace('dataset_info:', 'dataset_info: [unclosed'));
    const report = await verify({ dir: copy, numProc: 2 });
    assert.deepEqual(codes(report), ['missing_card']);
    assert.match(report.problems[0]?.message ?? '', /README\.md's YAML front matter does not parse/);
  });

  it('catches a wrong num_examples in the card', async () => {
    const copy = await copyOf(output);
    const card = await readFile(path.join(copy, 'README.md'), 'utf8');
    await writeFile(path.join(copy, 'README.md'), card.replace(/num_examples: 270\n/, 'num_examples: 271\n'));
    const report = await verify({ dir: copy, numProc: 2 });
    assert.deepEqual(codes(report), ['card_splits']);
    assert.match(report.problems[0]?.message ?? '', /README\.md says train has 271 rows \(num_examples\), the files hold 270: load_dataset fails with NonMatchingSplitsSizesError/);
  });

  it('catches a missing shard and a file that is not one', async () => {
    const copy = await copyOf(output);
    const shard = shards[2] ?? '';
    await rm(path.join(copy, shard));
    await writeFile(path.join(copy, 'data', 'train-extra.parquet'), 'x');
    const report = await verify({ dir: copy, numProc: 2 });
    assert.ok(report.problems.some((problem) => problem.code === 'missing_shard' && problem.message === `${shard} is missing`), JSON.stringify(report.problems));
    assert.ok(report.problems.some((problem) => problem.code === 'unexpected_file' && problem.where === 'data/train-extra.parquet'));
    assert.ok(report.problems.some((problem) => problem.code === 'card_splits'), 'the card no longer matches the rows');
    const json = await runCli(['verify', copy, '--json', '--quiet']);
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as VerifyReport).ok, false);
  });

  it('says, with exit 1 and never a crash, that report.json is cut short, emptied or not a report', async () => {
    for (const [content, flaw] of [
      [null, /report\.json is not JSON \(.*\): it was cut short or changed/],
      ['{}', /report\.json is not a report of this tool \(it has no input\.rows\)/],
      ['null', /report\.json is not a report of this tool \(it is not an object\)/],
      ['{"input": {"rows": 300}, "rejected": {"rows": 0}, "output": {"splits": {"train": {"rows": 270, "files": [{"file": 7}]}}}}', /output\.splits\.train\.files are not files/],
    ] as const) {
      const copy = await copyOf(output);
      const file = path.join(copy, 'report.json');
      if (content === null) await truncate(file, 200);
      else await writeFile(file, content);
      const report = await verify({ dir: copy, numProc: 2 });
      assert.deepEqual(codes(report), ['report_damaged'], content ?? 'cut short');
      assert.match(report.problems[0]?.message ?? '', flaw);
      const result = await runCli(['verify', copy]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /report_damaged: report\.json/);
    }
  });

  it('catches a data_files pattern of the card that matches no file, or leaves a shard out', async () => {
    const copy = await copyOf(output);
    const card = path.join(copy, 'README.md');
    await writeFile(card, (await readFile(card, 'utf8')).replace('path: data/train-*', 'path: data/training-*'));
    const report = await verify({ dir: copy, numProc: 2 });
    assert.deepEqual([...new Set(codes(report))], ['card_data_files']);
    assert.match(report.problems[0]?.message ?? '', /data_files for the train split \(data\/training-\*\) match no file: load_dataset fails/);
    assert.equal(report.problems.filter((problem) => /is not picked up by README\.md's data_files/.test(problem.message)).length, shards.length);
  });

  it('checks the rejected rows against report.json: rejects.parquet missing, cut short, damaged inside or of other rows', async () => {
    const input = await sampleDir(200, { files: 1, rowGroupSize: 100, seed: 5 });
    await addRejectedRows(input);
    const withRejects = path.join(await tempDir(), 'with-rejects');
    const written = await convert({ input: [input], output: withRejects, maxRejectFraction: 1, numProc: 2 });
    assert.ok(written.rejected.rows > 0);
    assert.deepEqual((await verify({ dir: withRejects, numProc: 2 })).problems, []);
    const rejects = 'rejects/rejects.parquet';
    const bytes = await readFile(path.join(withRejects, rejects));
    const damage: [string, (file: string) => Promise<void>, RegExp][] = [
      ['missing_rejects', (file) => rm(file), /is missing: report\.json says \d+ rows were rejected/],
      ['rejects_damaged', (file) => truncate(file, 300), /cannot be read: it is cut short/],
      // The first data page's bytes, overwritten: the footer reads, the rows do not.
      ['rejects_damaged', (file) => writeFile(file, Buffer.concat([bytes.subarray(0, 4), Buffer.alloc(200, 0xff), bytes.subarray(204)])), /cannot be read/],
    ];
    for (const [code, harm, message] of damage) {
      const copy = await copyOf(withRejects);
      await harm(path.join(copy, rejects));
      const report = await verify({ dir: copy, numProc: 2 });
      assert.deepEqual(codes(report), [code]);
      assert.match(report.problems[0]?.message ?? '', message);
      assert.equal((await runCli(['verify', copy])).code, 1);
    }
    const copy = await copyOf(withRejects);
    const file = path.join(copy, 'report.json');
    const said = JSON.parse(await readFile(file, 'utf8')) as { rejected: { rows: number }; input: { rows: number } };
    said.rejected.rows += 1;
    said.input.rows += 1;
    await writeFile(file, JSON.stringify(said));
    const report = await verify({ dir: copy, numProc: 2 });
    assert.deepEqual(codes(report), ['rows_differ']);
    assert.match(report.problems[0]?.message ?? '', /rejects\.parquet holds \d+ rows; report\.json says \d+ were rejected/);
  });

  it('says a directory that does not exist is not there (exit 2)', async () => {
    const result = await runCli(['verify', path.join(await tempDir(), 'nothing')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /nothing: no such directory\. Give the directory of a converted dataset\./);
  });
});
