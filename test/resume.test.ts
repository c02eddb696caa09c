import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { convertIter } from '../src/run/convert.js';
import type { ConvertReport } from '../src/run/convert-report.js';
import { RlaifError } from '../src/errors.js';
import { addRejectedRows, assertSameFiles, CLI, filesOf, killAfterCheckpoint, readJson, runCli, sampleDir, sleep, tempDir } from './fixtures.js';

describe('resume after a crash', () => {
  let input: string;
  let reference: Map<string, Buffer>;
  let common: string[];
  let dir: string;

  before(async () => {
    input = await sampleDir(500, { files: 2, rowGroupSize: 125 });
    // A third file with rows that are rejected, so that rejects are kept across a crash too.
    await addRejectedRows(input);
    dir = await tempDir();
    // Small checkpoints, so a run of a second takes many; a test split large enough to have rows pending in both.
    common = ['-i', input, '--checkpoint-every', '96KB', '--test-size', '0.2', '--max-reject-fraction', '1', '--num-proc', '2', '--quiet'];
    const ref = path.join(dir, 'reference');
    const made = await runCli(['convert', ...common, '-o', ref]);
    assert.equal(made.code, 0, made.stderr);
    reference = await filesOf(ref);
    assert.ok([...reference.keys()].some((name) => name.startsWith('rejects/')), 'the input has rejected rows');
  });

  it('stops at its next checkpoint when its lock was taken over (it was suspended too long), and touches nothing of the new holder\'s', async () => {
    const output = path.join(dir, 'fenced');
    const staging = `${output}.partial`;
    let taken = false;
    const run = async (): Promise<void> => {
      for await (const event of convertIter({ input: [input], output, checkpointEvery: '96KB', testSize: 0.2, maxRejectFraction: 1, numProc: 2 })) {
        if (!taken && event.type === 'progress' && existsSync(path.join(staging, 'checkpoint.json'))) {
          // Another host's run takes the staging directory over, as if this one had been suspended for minutes.
          await writeFile(path.join(staging, 'lock.json'), JSON.stringify({ host: 'another-host', pid: 7, token: 'theirs' }));
          taken = true;
        }
      }
    };
    await assert.rejects(run(), (error: unknown) => error instanceof RlaifError && error.code === 'ERR_LOCK_LOST');
    assert.ok(taken);
    assert.ok(existsSync(staging) && existsSync(path.join(staging, 'checkpoint.json')), 'the staging directory is left to its new holder');
    assert.match(await readFile(path.join(staging, 'lock.json'), 'utf8'), /theirs/);
    assert.ok(!existsSync(output));
  });

  it('lets go of the lock when its caller stops while it takes up a dead run, so the same process can take the output again', async () => {
    const output = path.join(dir, 'let-go');
    const staging = `${output}.partial`;
    assert.ok(await killAfterCheckpoint(['convert', ...common, '-o', output], staging, 0), 'killed after its first checkpoint');
    const options = { input: [input], output, checkpointEvery: '96KB', testSize: 0.2, maxRejectFraction: 1, numProc: 2 };
    // A caller that stops at the first event of the run taken up (the lock is held; no writer is open yet).
    for await (const event of convertIter(options)) if (event.type === 'resume') break;
    // The lock was held by this process, which lives: before, the output stayed busy until it ended.
    let report: ConvertReport | undefined;
    for await (const event of convertIter(options)) if (event.type === 'done') report = event.report;
    assert.equal(report?.resume?.resumed, true);
    assertSameFiles(await filesOf(output), reference, 'taken up after a caller stopped');
  });

  it('never follows a checkpoint that names files outside its directory (an edited one): it starts over', async () => {
    const output = path.join(dir, 'forged');
    const staging = `${output}.partial`;
    const killed = await killAfterCheckpoint(['convert', ...common, '-o', output], staging, 0);
    assert.ok(killed, 'killed after its first checkpoint');
    const victim = path.join(dir, 'victim.txt');
    await writeFile(victim, 'my precious thesis');
    const file = path.join(staging, 'checkpoint.json');
    const checkpoint = JSON.parse(await readFile(file, 'utf8')) as { splits: Record<string, { writer: { open: { file: string } | null } }> };
    const open = Object.values(checkpoint.splits).find((split) => split.writer.open !== null)?.writer.open;
    assert.ok(open !== undefined && open !== null);
    open.file = path.relative(staging, victim).replace(/\.partial$/, '');
    await writeFile(file, JSON.stringify(checkpoint));
    const again = await runCli(['convert', ...common.filter((arg) => arg !== '--quiet'), '-o', output]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Starting over: .*\(its checkpoint names files outside its directory\)/);
    assert.equal(await readFile(victim, 'utf8'), 'my precious thesis');
    assertSameFiles(await filesOf(output), reference, 'started over');
    // A split said finished, whose old files (to be removed once its cut is in place) lie outside.
    const other = path.join(dir, 'forged-finished');
    assert.ok(await killAfterCheckpoint(['convert', ...common, '-o', other], `${other}.partial`, 0), 'killed after its first checkpoint');
    const otherFile = path.join(`${other}.partial`, 'checkpoint.json');
    const forged = JSON.parse(await readFile(otherFile, 'utf8')) as Record<string, unknown>;
    forged.finished = { train: { rows: 1, nbytes: 1, files: [], resharded: true, apart: 'data.train-cut', replaces: [path.relative(`${other}.partial`, victim)] } };
    await writeFile(otherFile, JSON.stringify(forged));
    const third = await runCli(['convert', ...common.filter((arg) => arg !== '--quiet'), '-o', other]);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stderr, /Starting over: .*\(its checkpoint names files outside its directory\)/);
    assert.equal(await readFile(victim, 'utf8'), 'my precious thesis');
  });

  it('gives the same bytes as an uninterrupted run after kill -9 at any point, and leaves nothing behind', async () => {
    let resumed = 0;
    let reused = 0;
    for (const [at, extraMs] of [0, 40, 120, 250, 400].entries()) {
      const output = path.join(dir, `killed-${at}`);
      const args = ['convert', ...common, '-o', output];
      // Killed too late (it had published its output) counts as finished.
      if (!(await killAfterCheckpoint(args, `${output}.partial`, extraMs)) || existsSync(output)) continue;
      const again = await runCli(['convert', ...common, '-o', output]);
      assert.equal(again.code, 0, again.stderr);
      assertSameFiles(await filesOf(output), reference, `killed ${extraMs} ms after a checkpoint`);
      assert.ok(!existsSync(`${output}.partial`), 'the staging directory is gone');
      const report = await readJson<ConvertReport>(path.join(output, 'report.json'));
      assert.equal(report.resume?.resumed, true, JSON.stringify(report.resume));
      if (report.resume?.resumed === true) reused = Math.max(reused, report.resume.rowsReused);
      resumed++;
    }
    assert.ok(resumed >= 3, `only ${resumed} runs were killed before they finished`);
    assert.ok(reused > 0, 'a run killed late reused rows of the killed one');
  });

  it('is taken up with only the end left to do when stopped while it cuts its shards again, at either split', async () => {
    const options = { input: [input], checkpointEvery: '96KB', testSize: 0.2, maxRejectFraction: 1, numProc: 2 };
    const splitsCut = Object.entries((await readJson<ConvertReport>(path.join(dir, 'reference', 'report.json'))).output.splits)
      .filter(([, split]) => split.resharded)
      .map(([name]) => name);
    assert.deepEqual(splitsCut, ['train', 'test'], 'rows were rejected in both splits, so both are cut again');
    // Stopped as the train split is cut again, then as the test split is, train's cut recorded (and put in place).
    for (const [at, stopWhen] of [
      ['train', (finished: string[]) => finished.length === 0],
      ['test', (finished: string[]) => finished.includes('train')],
    ] as const) {
      const output = path.join(dir, `stopped-cutting-${at}`);
      const stop = new AbortController();
      await assert.rejects(async () => {
        for await (const event of convertIter({ ...options, output, signal: stop.signal })) {
          if (event.type !== 'progress' || event.stage !== 'write') continue;
          const checkpoint = await readJson<{ finished?: Record<string, unknown> }>(path.join(`${output}.partial`, 'checkpoint.json'));
          if (stopWhen(Object.keys(checkpoint.finished ?? {}))) stop.abort();
        }
      });
      assert.ok(existsSync(path.join(`${output}.partial`, 'checkpoint.json')), `stopped cutting ${at}: its work is kept`);
      let report: ConvertReport | undefined;
      for await (const event of convertIter({ ...options, output })) if (event.type === 'done') report = event.report;
      assertSameFiles(await filesOf(output), reference, `stopped while cutting ${at}`);
      assert.ok(report?.resume?.resumed === true, JSON.stringify(report?.resume));
      // What it converted again: at most the rows of each split that waited for their row group (125 rows).
      const rows = report.input.rows;
      assert.ok(report.resume.rowsReused >= rows - 2 * 125, `stopped cutting ${at}: reused ${report.resume.rowsReused} of ${rows}`);
      if (at === 'test') assert.ok(report.resume.rowsReused >= rows - 125, `the train split was taken up finished (reused ${report.resume.rowsReused} of ${rows})`);
    }
  });

  it('starts over, and says why, when the input or options changed or --no-resume is given', async () => {
    const fresh = path.join(dir, 'fresh-seed-7');
    assert.equal((await runCli(['convert', ...common, '--seed', '7', '-o', fresh])).code, 0);
    const output = path.join(dir, 'changed');
    assert.ok(await killAfterCheckpoint(['convert', ...common, '-o', output], `${output}.partial`, 0));
    const changed = await runCli(['convert', ...common.filter((arg) => arg !== '--quiet'), '--seed', '7', '-o', output]);
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stderr, /Starting over: the interrupted run in \S+ cannot be taken up \(it was converting other input or with other options/);
    assertSameFiles(await filesOf(output), await filesOf(fresh), 'after a change of seed');
    const report = await readJson<ConvertReport>(path.join(output, 'report.json'));
    assert.equal(report.resume?.resumed, false);

    const restart = path.join(dir, 'restart');
    assert.ok(await killAfterCheckpoint(['convert', ...common, '-o', restart], `${restart}.partial`, 0));
    const over = await runCli(['convert', ...common, '--no-resume', '-o', restart]);
    assert.equal(over.code, 0, over.stderr);
    assert.deepEqual((await readJson<ConvertReport>(path.join(restart, 'report.json'))).resume, { resumed: false, reason: 'resume is off (--no-resume)' });
    assertSameFiles(await filesOf(restart), reference, 'with --no-resume');
  });

  it('keeps its work on SIGTERM and says how to take it up; a second run on the same output is refused while one runs', async () => {
    const output = path.join(dir, 'terminated');
    const staging = `${output}.partial`;
    const child = spawn(process.execPath, [CLI, 'convert', ...common.filter((arg) => arg !== '--quiet'), '-o', output], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => void (stderr += String(chunk)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    while (!existsSync(path.join(staging, 'checkpoint.json'))) await sleep(5);
    // Held still, so that it is surely running while the second run looks.
    process.kill(-(child.pid ?? 0), 'SIGSTOP');
    const second = await runCli(['convert', ...common, '-o', output]);
    process.kill(-(child.pid ?? 0), 'SIGCONT');
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, /is being written by another run \(process \d+ on /);
    child.kill('SIGTERM');
    assert.equal(await exited, 143, stderr);
    assert.match(stderr, /stopped by SIGTERM\. The work done up to the last checkpoint is kept in \S+terminated\.partial: run the same command again/);
    assert.ok(existsSync(path.join(staging, 'checkpoint.json')));
    assert.ok(!existsSync(path.join(staging, 'lock.json')), 'the lock is released');
    const again = await runCli(['convert', ...common, '-o', output]);
    assert.equal(again.code, 0, again.stderr);
    assertSameFiles(await filesOf(output), reference, 'after SIGTERM');
  });
});
