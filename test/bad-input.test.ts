import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileCases, goodRows } from '../scripts/bad-corpus.js';
import { convert } from '../src/run/convert.js';
import { InputError } from '../src/errors.js';
import { writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import type { SourceRow } from '../src/source/source-row.js';
import { makeImage, readJson, readParquet, runCli, sampleDir, tempDir } from './fixtures.js';


describe('file problems stop the run before any work, exit code 2, naming the file; valid files convert', async () => {
  const dir = await tempDir();
  for (const item of await fileCases(dir)) {
    it(item.name, async () => {
      const output = path.join(dir, `out-${item.name.replace(/\W+/g, '-')}`);
      const flags = item.flags ?? [];
      const result = await runCli(['convert', ...item.inputs.flatMap((input) => ['--input', input]), '--output', output, '--quiet', '--json', ...flags]);
      if ('rows' in item.expected) {
        assert.equal(result.code, 0, result.stderr);
        assert.equal((JSON.parse(result.stdout) as { output: { rows: number } }).output.rows, item.expected.rows);
        return;
      }
      const { code, message } = item.expected;
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.ok(!(await readdir(dir)).some((name) => name.startsWith(path.basename(output))), 'no output, not even a partial one');
      await assert.rejects(
        convert({ input: item.inputs, output, ...(flags.length > 0 ? { maxRowGroupBytes: flags[1] } : {}) }),
        (error: unknown) => error instanceof InputError && error.code === code,
      );
    });
  }
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
    assert.match(result.stderr, /^rlaif-v: --num-proc takes a whole number from 1 to \d+, got "0"$/m);
  });

  it('refuses an option that would do nothing, naming it, rather than passing it over', async () => {
    const dir = await sampleDir(4);
    const out = path.join(await tempDir(), 'out');
    const cases: [string[], RegExp][] = [
      [['convert', '-i', dir, '-o', out, '--images', 'png', '--quality', '50'], /^rlaif-v: --quality applies to --images jpeg and webp \(the encoders that take one\), not to png$/m],
      [['convert', '-i', dir, '-o', out, '--quality', '50'], /--quality applies to --images jpeg and webp .*, not to keep/],
      [['convert', '-i', dir, '-o', out, '--revision', 'main'], /^rlaif-v: --revision applies to --dataset \(a dataset on the Hub\), not to local input$/m],
      [['push', path.join(dir, 'nope')], /nope: no such directory\. Give the output directory of rlaif-v convert/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args, { env: { HF_TOKEN: '' } });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    assert.equal((await runCli(['convert', '-i', dir, '-o', out, '--images', 'webp', '--quality', '50', '--quiet'])).code, 0, 'quality with an encoder that takes one');
  });

  it('reads every option strictly: one value of its form, given once, or exit 2 and one line that names it', async () => {
    const dir = await sampleDir(4);
    const out = path.join(await tempDir(), 'out');
    const cases: [string[], RegExp][] = [
      [['--test-size', 'abc'], /--test-size takes a fraction of the rows with a decimal point .* got "abc"/],
      [['--test-size', '50%'], /--test-size takes .* got "50%"/],
      [['--test-size', '0x10'], /--test-size takes .* got "0x10"/],
      [['--test-size', '1.0'], /--test-size 1\.0 is a fraction of the rows that leaves none to train on/],
      [['--test-size', '4'], /fewer test rows than the 4 input rows \(4 would leave none to train on\) for --test-size/],
      [['--max-pixels', '178956971'], /--max-pixels takes a whole number from 1 to 178956970, got "178956971"/],
      [['--test-size', ''], /--test-size needs a value/],
      [['--test-size'], /--test-size needs a value/],
      [['--test-size', '--seed', '3'], /--test-size needs a value/],
      [['--num-proc', '2', '--num-proc', '1'], /--num-proc was given 2 times \(2, 1\); give it once/],
      [['--num-proc', '1000'], /--num-proc takes a whole number from 1 to \d+, got "1000"/],
      [['--num-proc'], /--num-proc needs a value/],
      [['--seed', '-1'], /--seed takes a whole number from 0 to 4294967295, got "-1"/],
      [['--quality', 'abc'], /--quality takes a whole number from 1 to 100, got "abc"/],
      [['--writer-batch-size', '1e3'], /--writer-batch-size takes a whole number .* got "1e3"/],
      [['--max-reject-fraction', '2'], /--max-reject-fraction takes a number from 0 to 1 .* got "2"/],
      [['--image-timeout', 'soon'], /--image-timeout takes a number .* got "soon"/],
      [['--images', 'png', '--images', 'jpeg'], /--images was given 2 times/],
      [['--output', 'elsewhere'], /--output was given 2 times/],
      [['--max-shard-size', 'abc'], /for --max-shard-size but received "abc"$/m],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(['convert', '--input', dir, '--output', out, ...args]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
      assert.doesNotMatch(result.stderr, /\bat |of type/, `${args.join(' ')}: no stack, no JavaScript types`);
    }
    // An empty --input would have meant "download the dataset".
    const noInput = await runCli(['convert', '--output', out, '--input']);
    assert.equal(noInput.code, 2);
    assert.match(noInput.stderr, /--input needs a value/);
    // Accepted: a fraction with a decimal point, a number of rows.
    for (const testSize of ['0.25', '.25', '1']) {
      const result = await runCli(['convert', '--input', dir, '--output', out, '--overwrite', '--quiet', '--json', '--test-size', testSize]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal((JSON.parse(result.stdout) as { output: { splits: { test: { rows: number } } } }).output.splits.test.rows, 1);
    }
  });

  it('exits 2 for an unknown option and for a missing command', async () => {
    assert.equal((await runCli(['convert', '--input', 'x', '--output', 'y', '--bogus'])).code, 2);
    assert.equal((await runCli([])).code, 2);
  });

  it('prints help for every command, each option described and each example whole on its line', async () => {
    for (const command of ['convert', 'finalize', 'slurm', 'verify', 'cache', 'push', 'sample', 'bench']) {
      const result = await runCli([command, '--help'], { env: { COLUMNS: '80' } });
      assert.equal(result.code, 0, `${command}: ${result.stderr}`);
      const options = result.stdout.split('\n').filter((line) => /^ {2}(-\w, )?--[a-z-]+\s/.test(line) || /^ {6}--[a-z-]+\s/.test(line));
      for (const line of options) assert.match(line, /--[a-z-]+\s+[^\s[]/, `${command}: an option without a description: ${line}`);
      const examples = result.stdout.split('Examples:\n')[1]?.split('\n').filter((line) => line.trim() !== '') ?? [];
      for (const [index, line] of examples.entries()) {
        // Lines go in pairs: what it does, then the whole command.
        assert.match(line, index % 2 === 0 ? /^ {2}\S.*:$/ : /^ {4}(RLAIF_V_CACHE=\S+ )?rlaif-v /, `${command}: ${JSON.stringify(line)}`);
      }
    }
    assert.equal((await runCli(['--help'])).code, 0);
  });
});
