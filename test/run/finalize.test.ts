import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { convert } from '../../src/run/convert.js';
import type { ConvertReport } from '../../src/run/convert-report.js';
import { finalize } from '../../src/run/finalize.js';
import { partDir } from '../../src/run/part-manifest.js';
import { removeMarkedDirectory } from '../../src/dirs/tool-marker.js';
import { addRejectedRows, assertSameFiles, CLI, filesOf, killAfterCheckpoint, readJson, remark, runCli, sampleDir, sleep, tempDir } from '../support/fixtures.js';

/** Converts `input` in `count` parts, one after another, then puts them together; returns finalize's report. */
async function inParts(input: string, output: string, count: number, options: { testSize: number; maxShardSize: string }): Promise<ConvertReport> {
  for (let index = 0; index < count; index++) {
    await convert({ input: [input], output, numProc: 2, ...options, maxRejectFraction: 1, checkpointEvery: '96KB', numShards: count, shardIndex: index });
  }
  return finalize({ output });
}

describe('a run in parts (convert --num-shards, then finalize)', () => {
  let clean: string;
  let withRejects: string;
  let dir: string;
  const options = { testSize: 0.2, maxShardSize: '300KB' };
  const cli = ['--test-size', '0.2', '--max-shard-size', '300KB', '--max-reject-fraction', '1', '--checkpoint-every', '96KB', '--num-proc', '2', '--quiet'];

  before(async () => {
    clean = await sampleDir(500, { files: 2, rowGroupSize: 125 });
    withRejects = await sampleDir(300, { files: 1, rowGroupSize: 100, seed: 3 });
    await addRejectedRows(withRejects);
    dir = await tempDir();
  });

  it('writes the bytes of a one-machine run for any number of parts, taking whole what it can', async () => {
    const reference = path.join(dir, 'clean-one');
    assert.equal((await runCli(['convert', '-i', clean, '-o', reference, ...cli])).code, 0);
    const expected = await filesOf(reference);
    assert.ok([...expected.keys()].filter((name) => name.startsWith('data/train-')).length >= 3, 'several train shards');
    for (const count of [1, 2, 3, 7]) {
      const output = path.join(dir, `clean-${count}`);
      const report = await inParts(clean, output, count, options);
      assertSameFiles(await filesOf(output), expected, `${count} part(s)`);
      assert.ok(!existsSync(`${output}.partial`), 'the parts are gone');
      assert.equal(report.parts?.length, count);
      assert.deepEqual(report.parts?.map((part) => part.index), [...Array(count).keys()]);
      const rows = report.finalize?.rows;
      assert.ok(rows !== undefined);
      assert.equal(rows.linked + rows.copied + rows.rewritten, 500);
      // Only the row groups a part's ends fall in are encoded again, in each split.
      assert.ok(rows.rewritten <= (count - 1) * 2 * 100, `${count} parts: ${JSON.stringify(rows)}`);
      if (count === 1) assert.deepEqual(rows, { linked: 500, copied: 0, rewritten: 0 });
      assert.deepEqual(await readJson<ConvertReport>(path.join(output, 'report.json')), report);
    }
  });

  it('writes the same bytes when rows were rejected, rejects included', async () => {
    const reference = path.join(dir, 'rejects-one');
    assert.equal((await runCli(['convert', '-i', withRejects, '-o', reference, ...cli])).code, 0);
    const expected = await filesOf(reference);
    assert.ok(expected.has('rejects/rejects.parquet'));
    for (const count of [2, 4]) {
      const output = path.join(dir, `rejects-${count}`);
      const report = await inParts(withRejects, output, count, options);
      assertSameFiles(await filesOf(output), expected, `${count} parts`);
      const one = await readJson<ConvertReport>(path.join(reference, 'report.json'));
      assert.deepEqual(report.rejected, one.rejected);
      assert.equal(report.output.rows, one.output.rows);
    }
  });

  it('with overwrite, replaces a damaged output by what the parts make, even of the same input and options', async () => {
    const reference = await filesOf(path.join(dir, 'clean-one'));
    const output = path.join(dir, 'damaged');
    await inParts(clean, output, 2, options);
    const shard = path.join(output, 'data', (await readdir(path.join(output, 'data'))).find((name) => name.startsWith('train-')) ?? '');
    await writeFile(shard, (await readFile(shard)).subarray(0, 1000));
    for (let index = 0; index < 2; index++) {
      await convert({ input: [clean], output, numProc: 2, ...options, maxRejectFraction: 1, checkpointEvery: '96KB', numShards: 2, shardIndex: index, overwrite: true });
    }
    await finalize({ output, overwrite: true });
    assertSameFiles(await filesOf(output), reference, 'the damaged output, finalized again');
    assert.ok(!existsSync(`${output}.partial`));
  });

  it('takes up a part killed with kill -9, and does not do a finished part again', async () => {
    const reference = await filesOf(path.join(dir, 'clean-one'));
    const output = path.join(dir, 'killed');
    const part = (index: number): string[] => ['convert', '-i', clean, '-o', output, ...cli, '--num-shards', '2', '--shard-index', String(index)];
    assert.ok(await killAfterCheckpoint(part(0), partDir(output, { index: 0, count: 2 }), 30), 'killed before it finished');
    const early = await runCli(['finalize', output]);
    assert.equal(early.code, 2, early.stderr);
    assert.match(early.stderr, /Not every part of 2 is finished: part 0 stopped before it finished \(run it again: it takes up its work\); part 1 has not run, or stopped before its first checkpoint \(see its log; run it\)/);
    const again = await runCli(part(0).filter((arg) => arg !== '--quiet'));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Taking up the interrupted run in \S+0-of-2/);
    assert.match(again.stderr, /Part 0 of 2 done: .* Once every part is done: rlaif-v finalize \S+killed/);
    const twice = await runCli(part(0).filter((arg) => arg !== '--quiet'));
    assert.equal(twice.code, 0, twice.stderr);
    assert.match(twice.stderr, /This part was finished by an earlier run/);
    // The part's index from Slurm's array task id, as in an array job.
    const slurm = await runCli(['convert', '-i', clean, '-o', output, ...cli, '--num-shards', '2'], { env: { SLURM_ARRAY_TASK_ID: '8', SLURM_ARRAY_TASK_MIN: '7' } });
    assert.equal(slurm.code, 0, slurm.stderr);
    const done = await runCli(['finalize', output, '--json']);
    assert.equal(done.code, 0, done.stderr);
    assertSameFiles(await filesOf(output), reference, 'after a part was killed');
    const report = JSON.parse(done.stdout) as ConvertReport;
    assert.equal(report.parts?.[0]?.resume?.resumed, true);
  });

  it('after kill -9 at any moment, finalize run again gives the same bytes and leaves nothing behind', async () => {
    const reference = await filesOf(path.join(dir, 'clean-one'));
    const parts = path.join(dir, 'parts-kept');
    for (let index = 0; index < 3; index++) {
      assert.equal((await runCli(['convert', '-i', clean, '-o', parts, ...cli, '--num-shards', '3', '--shard-index', String(index)])).code, 0);
    }
    let killed = 0;
    for (const delay of [150, 250, 350, 450, 600]) {
      const output = path.join(dir, `finalize-killed-${delay}`);
      await cp(`${parts}.partial`, `${output}.partial`, { recursive: true });
      // Copied under another name, the parts' directory is not this output's until its marker says so.
      await remark(`${output}.partial`, { name: path.basename(`${output}.partial`), output: path.basename(output) });
      const child = spawn(process.execPath, [CLI, 'finalize', output, '--quiet'], { stdio: 'ignore', detached: true });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await sleep(delay);
      if (child.exitCode === null) {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
        killed++;
      }
      await exited;
      const again = await runCli(['finalize', output, '--quiet']);
      assert.equal(again.code, 0, `killed after ${delay} ms: ${again.stderr}`);
      assertSameFiles(await filesOf(output), reference, `finalize killed after ${delay} ms`);
      assert.ok(!existsSync(`${output}.partial`), 'nothing left behind');
    }
    assert.ok(killed >= 2, `only ${killed} finalize runs were killed before they ended`);
  });

  it('finishes what a finalize killed while removing the parts left, and is done', async () => {
    const reference = await filesOf(path.join(dir, 'clean-one'));
    const parts = path.join(dir, 'parts-kept');
    const output = path.join(dir, 'finalize-killed-removing');
    await cp(`${parts}.partial`, `${output}.partial`, { recursive: true });
    await remark(`${output}.partial`, { name: path.basename(`${output}.partial`), output: path.basename(output) });
    const report = await finalize({ output });
    // As a finalize killed part way through removing the parts leaves them: the marker, kept to the last, and some parts.
    await cp(`${parts}.partial`, `${output}.partial`, { recursive: true });
    await remark(`${output}.partial`, { name: path.basename(`${output}.partial`), output: path.basename(output), finalizing: report.finalize?.id, state: 'discarding' });
    let seen = 0;
    await assert.rejects(
      removeMarkedDirectory(`${output}.partial`, {
        beforeRemove: () => {
          if (++seen === 2) throw new Error('killed');
        },
      }),
    );
    assert.ok(existsSync(`${output}.partial`));
    const again = await runCli(['finalize', output, '--quiet']);
    assert.equal(again.code, 0, again.stderr);
    assertSameFiles(await filesOf(output), reference, 'after a finalize killed while removing the parts');
    assert.ok(!existsSync(`${output}.partial`), 'nothing left behind');
    // Killed a step earlier: the output moved into place, its marker still final's and its lock with it, the parts kept.
    await cp(`${parts}.partial`, `${output}.partial`, { recursive: true });
    await remark(`${output}.partial`, { name: path.basename(`${output}.partial`), output: path.basename(output), finalizing: report.finalize?.id });
    await remark(output, { kind: 'final', name: 'final', state: 'publishing' });
    await writeFile(path.join(output, 'lock.json'), JSON.stringify({ host: hostname(), pid: 2 ** 22 + 1, token: 'the-killed-run' }));
    const last = await runCli(['finalize', output, '--quiet']);
    assert.equal(last.code, 0, last.stderr);
    assertSameFiles(await filesOf(output), reference, 'after a finalize killed just after moving the output into place');
    assert.ok(!existsSync(`${output}.partial`), 'nothing left behind');
  });

  it('refuses, naming them, parts that are missing, of other options or of another count, before any work', async () => {
    const output = path.join(dir, 'mismatched');
    const part = (index: number, count: number, extra: string[] = []): Promise<{ code: number | null; stderr: string }> =>
      runCli(['convert', '-i', clean, '-o', output, ...cli, '--num-shards', String(count), '--shard-index', String(index), ...extra]);
    assert.equal((await part(0, 3)).code, 0);
    assert.equal((await part(2, 3, ['--seed', '7'])).code, 0);
    const redone = await runCli(['convert', '-i', clean, '-o', output, ...cli.filter((arg) => arg !== '--quiet'), '--num-shards', '3', '--shard-index', '2', '--seed', '8']);
    assert.equal(redone.code, 0, redone.stderr);
    assert.match(redone.stderr, /Starting over: the interrupted run in \S+2-of-3 cannot be taken up \(it was converting other input or with other options/);
    assert.equal((await part(2, 3, ['--seed', '7'])).code, 0);
    const missing = await runCli(['finalize', output]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /part 1 has not run/);
    assert.equal((await part(1, 3)).code, 0);
    const other = await runCli(['finalize', output]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /not made from the same input and options \(their fingerprints differ: parts 0 and 1 from \w+ and part 2 from \w+\)/);
    await rm(partDir(output, { index: 2, count: 3 }), { recursive: true });
    assert.equal((await part(0, 2)).code, 0);
    const counts = await runCli(['finalize', output]);
    assert.equal(counts.code, 2);
    assert.match(counts.stderr, /holds parts of 2 and 3 parts \(0-of-2, 0-of-3 and 1-of-3\)/);
    assert.ok(!existsSync(output), 'nothing was written');

    const none = await runCli(['finalize', path.join(dir, 'never')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /No part of a multi-machine run was found for \S+never/);
    const whole = await runCli(['convert', '-i', clean, '-o', output, ...cli]);
    assert.equal(whole.code, 2);
    assert.match(whole.stderr, /holds the parts of a run over several machines .* rlaif-v finalize \S+mismatched; or pass --no-resume/);
    // A part that runs (its lock held by a live process) is never removed, not even with --no-resume.
    await writeFile(path.join(partDir(output, { index: 1, count: 3 }), 'lock.json'), JSON.stringify({ host: hostname(), pid: process.pid }));
    const live = await runCli(['convert', '-i', clean, '-o', output, ...cli, '--no-resume']);
    assert.equal(live.code, 2);
    assert.match(live.stderr, new RegExp(`Part 1-of-3 of a run over several machines is being written in \\S+ \\(process ${process.pid} on `));
    assert.ok(existsSync(path.join(partDir(output, { index: 0, count: 3 }), 'part.json')), 'the parts are still there');
  });

  it('reads --num-shards and --shard-index strictly', async () => {
    const output = path.join(dir, 'flags');
    const cases: [string[], RegExp][] = [
      [['--num-shards', '3'], /--num-shards needs --shard-index, the part to convert \(in a Slurm array job it is taken from SLURM_ARRAY_TASK_ID\)/],
      [['--shard-index', '1'], /--shard-index needs --num-shards/],
      [['--num-shards', '3', '--shard-index', '3'], /--shard-index takes 0 to 2 with --num-shards 3, got 3/],
      [['--num-shards', '0', '--shard-index', '0'], /--num-shards takes a whole number from 1/],
      [['--num-shards', '2', '--shard-index', '0', '--push-to-hub'], /--push-to-hub pushes a whole output, not one part: give it to rlaif-v finalize/],
    ];
    for (const [flags, message] of cases) {
      const result = await runCli(['convert', '-i', clean, '-o', output, ...flags], { env: { SLURM_ARRAY_TASK_ID: '' } });
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    const outside = await runCli(['convert', '-i', clean, '-o', output, '--num-shards', '2'], { env: { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '1' } });
    assert.equal(outside.code, 2);
    assert.match(outside.stderr, /SLURM_ARRAY_TASK_ID "5" \(less SLURM_ARRAY_TASK_MIN "1"\) is not a part of --num-shards 2: submit the array as --array=0-1/);
  });
});
