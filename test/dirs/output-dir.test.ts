import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { convert, convertIter } from '../../src/run/convert.js';
import type { ConvertEvent } from '../../src/run/convert-report.js';
import { OutputError } from '../../src/errors.js';
import { openStaging } from '../../src/dirs/staging.js';
import { outputIdentity, publishOutput, REPLACED_OUTPUT } from '../../src/dirs/publish-output.js';
import { MARKER_FILE } from '../../src/dirs/tool-marker.js';
import { assertSameFiles, CLI, filesOf, remark, sampleDir, tempDir } from '../support/fixtures.js';

/** The id of a process that has ended: what a killed run leaves in its leftovers' names. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(child.pid !== undefined);
  return child.pid;
}

/** Every file under `dir` (relative path) with the SHA-256 of its bytes. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    files.set(path.relative(dir, file), createHash('sha256').update(await readFile(file)).digest('hex'));
  }
  return files;
}

function refusedWith(code: string) {
  return (error: unknown): boolean => error instanceof OutputError && error.code === code && error.exitCode === 2;
}

describe('the output directory', () => {
  let input: string;
  before(async () => {
    input = await sampleDir(40);
  });

  it('is never the input, inside it, or around it, even with overwrite; the input stays whole', async () => {
    const dir = await tempDir();
    const source = path.join(dir, 'source');
    await mkdir(source);
    for (const name of await readdir(input)) await writeFile(path.join(source, name), await readFile(path.join(input, name)));
    const before = await readdir(source);
    await assert.rejects(convert({ input: [source], output: source, overwrite: true }), refusedWith('ERR_OUTPUT_OVERLAPS_INPUT'));
    await assert.rejects(convert({ input: [source], output: dir, overwrite: true }), refusedWith('ERR_OUTPUT_OVERLAPS_INPUT'));
    await assert.rejects(convert({ input: [source], output: path.join(source, 'sub') }), refusedWith('ERR_OUTPUT_OVERLAPS_INPUT'));
    const file = path.join(source, before[0] ?? '');
    await assert.rejects(convert({ input: [file], output: file, overwrite: true }), refusedWith('ERR_OUTPUT_IS_FILE'));
    assert.deepEqual(await readdir(source), before);
    assert.deepEqual(await readdir(dir), ['source']);
  });

  it('replaces with overwrite only an earlier output of this tool, never a directory of other files or a file', async () => {
    const dir = await tempDir();
    const mine = path.join(dir, 'mine');
    await mkdir(mine);
    await writeFile(path.join(mine, 'notes.txt'), 'keep me');
    await assert.rejects(convert({ input: [input], output: mine, overwrite: true }), refusedWith('ERR_OUTPUT_NOT_OURS'));
    assert.deepEqual(await readdir(mine), ['notes.txt']);

    const plain = path.join(dir, 'afile');
    await writeFile(plain, 'keep me too');
    await assert.rejects(convert({ input: [input], output: plain, overwrite: true }), refusedWith('ERR_OUTPUT_IS_FILE'));
    assert.equal(await readFile(plain, 'utf8'), 'keep me too');

    const ours = path.join(dir, 'ours');
    await convert({ input: [input], output: ours });
    await writeFile(path.join(ours, 'extra.txt'), 'from the first run');
    await assert.rejects(convert({ input: [input], output: ours }), refusedWith('ERR_OUTPUT_EXISTS'));
    await convert({ input: [input], output: ours, overwrite: true });
    assert.ok(!(await readdir(ours)).includes('extra.txt'));
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    await convert({ input: [input], output: empty, overwrite: true });
    assert.ok((await readdir(empty)).includes('report.json'));
  });

  it('is not the working directory or a parent of it: the CLI refuses with exit 2 and one line', async () => {
    const dir = await tempDir();
    const work = path.join(dir, 'work');
    await mkdir(work);
    await writeFile(path.join(work, 'keep.txt'), 'x');
    for (const output of ['.', '..']) {
      const run = spawnSync(process.execPath, [CLI, 'convert', '-i', input, '-o', output, '--overwrite'], { cwd: work, encoding: 'utf8' });
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, /^rlaif-v: --output .* is the working directory or a parent of it/);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
    assert.deepEqual(await readdir(work), ['keep.txt']);
  });

  it('leaves alone whatever lies beside it under names like its own, a user\'s renamed output among them', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    const dead = await deadPid();
    // The names older versions cleared by themselves, and a published output the user renamed to keep it.
    await convert({ input: [input], output: path.join(dir, 'kept') });
    await rename(path.join(dir, 'kept'), `${output}.old-20240101`);
    const lookalikes = [`${output}.partial-${hostname()}-${dead}`, `${output}.partial-${dead}`, `${output}.old-${hostname()}-${dead}`, `${output}.removing-backup-${dead}`];
    for (const lookalike of lookalikes) {
      await mkdir(path.join(lookalike, 'data'), { recursive: true });
      await writeFile(path.join(lookalike, 'data', 'train-00000-of-00001.parquet'), 'mine');
    }
    const before = await snapshot(dir);
    const events: ConvertEvent[] = [];
    for await (const event of convertIter({ input: [input], output })) events.push(event);
    assert.deepEqual(events.filter((event) => event.type === 'leftover'), []);
    const after = await snapshot(dir);
    for (const [file, hash] of before) assert.equal(after.get(file), hash, `${file} was changed`);
    // The renamed output is not this one's to replace by itself, and convert with overwrite replaces only `out`.
    await convert({ input: [input], output, overwrite: true });
    assert.equal((await snapshot(dir)).get(path.join(`${output}.old-20240101`, 'report.json')), before.get(path.join(`${output}.old-20240101`, 'report.json')));
  });

  it('is refused where <output>.partial is a directory this tool did not make, which is left whole', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'mydata');
    await mkdir(`${output}.partial`);
    await writeFile(path.join(`${output}.partial`, 'notes.txt'), 'keep me');
    for (const options of [{}, { resume: false }, { overwrite: true }]) {
      await assert.rejects(convert({ input: [input], output, ...options }), refusedWith('ERR_OUTPUT_NOT_OURS'));
    }
    await assert.rejects(convert({ input: [input], output, numShards: 2, shardIndex: 0 }), refusedWith('ERR_OUTPUT_NOT_OURS'));
    assert.deepEqual(await readdir(`${output}.partial`), ['notes.txt']);
    assert.deepEqual((await readdir(dir)).sort(), ['mydata.partial']);
    // An input named like a staging directory is never its own output's staging directory.
    const data = path.join(dir, 'data');
    await mkdir(`${data}.partial`);
    for (const name of await readdir(input)) await writeFile(path.join(`${data}.partial`, name), await readFile(path.join(input, name)));
    const inputFiles = await snapshot(`${data}.partial`);
    for (const options of [{}, { overwrite: true }, { resume: false }]) {
      await assert.rejects(convert({ input: [`${data}.partial`], output: data, ...options }), refusedWith('ERR_OUTPUT_OVERLAPS_INPUT'));
    }
    assert.deepEqual(await snapshot(`${data}.partial`), inputFiles);
  });

  it('is finished by the next run when a run was killed while publishing it, at any step', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    await convert({ input: [input], output });
    const expected = await snapshot(output);
    // Killed after the marker said publishing and the old output was moved in, before the new one was moved out.
    await convert({ input: [input], output: path.join(dir, 'next'), seed: 7 });
    const staging = `${output}.partial`;
    await rename(path.join(dir, 'next'), staging);
    await remark(staging, { kind: 'staging', name: path.basename(staging), output: 'out', state: 'publishing' });
    const nextFiles = await snapshot(staging);
    await rename(output, path.join(staging, REPLACED_OUTPUT));
    const events: ConvertEvent[] = [];
    await assert.rejects(async () => {
      for await (const event of convertIter({ input: [input], output })) events.push(event);
    }, refusedWith('ERR_OUTPUT_EXISTS'));
    assert.deepEqual(events.flatMap((event) => (event.type === 'leftover' ? [event.leftover.action] : [])).sort(), ['removed', 'restored']);
    assert.ok(!existsSync(staging));
    assert.deepEqual([...(await snapshot(output)).keys()].sort(), [...nextFiles.keys()].filter((file) => !file.startsWith(REPLACED_OUTPUT)).sort());
    assert.ok(expected.size > 0);
  });

  it('is put in place by the same command, and done, when a run was killed with its output whole, before it was moved', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    await convert({ input: [input], output });
    const expected = await filesOf(output);
    // As left by a run killed after it said it was publishing, before its checkpoint and segments were removed.
    const staging = `${output}.partial`;
    await rename(output, staging);
    await remark(staging, { kind: 'staging', name: path.basename(staging), output: 'out', state: 'publishing' });
    await writeFile(path.join(staging, 'checkpoint.json'), '{}');
    await mkdir(path.join(staging, 'rejects'), { recursive: true });
    await writeFile(path.join(staging, 'rejects', 'segment-00000.parquet'), 'x');
    const events: ConvertEvent[] = [];
    for await (const event of convertIter({ input: [input], output })) events.push(event);
    assert.equal(events.at(-1)?.type, 'done');
    assertSameFiles(new Map([...(await filesOf(output))].filter(([name]) => name !== 'rejects/segment-00000.parquet')), expected, 'put in place');
    assert.ok(!existsSync(path.join(output, 'checkpoint.json')) && !existsSync(path.join(output, 'rejects', 'segment-00000.parquet')));
  });

  it('is finished by the same command when a run was killed after moving it into place, before its marker said so', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    await convert({ input: [input], output });
    const expected = await filesOf(output);
    // As left by a run killed just after the rename: the staging directory's marker and its lock, moved with it.
    const left = async (lockPid: number): Promise<void> => {
      await remark(output, { kind: 'staging', name: 'out.partial', output: 'out', state: 'publishing' });
      await writeFile(path.join(output, 'lock.json'), JSON.stringify({ host: hostname(), pid: lockPid, token: 'the-killed-run' }));
    };
    await left(await deadPid());
    // Killed as it wrote the new marker, too: its temporary file is left.
    await writeFile(path.join(output, `${MARKER_FILE}.0b5e9c4e-6d1c-4a5e-9a6f-2f5a3a8d7c10.tmp`), '{"tool": "rlaif-v", "kind": "outp');
    const events: ConvertEvent[] = [];
    for await (const event of convertIter({ input: [input], output })) events.push(event);
    assert.equal(events.at(-1)?.type, 'done');
    assert.deepEqual(events.flatMap((event) => (event.type === 'leftover' ? [event.leftover.action] : [])), ['restored']);
    assert.ok(!existsSync(path.join(output, 'lock.json')));
    assert.equal((JSON.parse(await readFile(path.join(output, MARKER_FILE), 'utf8')) as { kind: string }).kind, 'output');
    assertSameFiles(await filesOf(output), expected, 'finished');
    // While the run that moved it lives (its lock says so), it is that run's to finish: left alone.
    const live = spawn('sleep', ['30']);
    try {
      await left(live.pid ?? 0);
      await assert.rejects(convert({ input: [input], output }), refusedWith('ERR_OUTPUT_EXISTS'));
      assert.ok(existsSync(path.join(output, 'lock.json')));
    } finally {
      live.kill();
    }
  });

  it('is replaced by the next run when a run allowed to replace it was killed just after saying it was publishing', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    await convert({ input: [input], output });
    await convert({ input: [input], output: path.join(dir, 'next'), seed: 7 });
    const staging = `${output}.partial`;
    await rename(path.join(dir, 'next'), staging);
    const replaces = await outputIdentity(output);
    await remark(staging, { kind: 'staging', name: path.basename(staging), output: 'out', state: 'publishing', replaces });
    const nextFiles = [...(await snapshot(staging)).keys()].sort();
    const events: ConvertEvent[] = [];
    await assert.rejects(async () => {
      for await (const event of convertIter({ input: [input], output })) events.push(event);
    }, refusedWith('ERR_OUTPUT_EXISTS'));
    assert.deepEqual(events.flatMap((event) => (event.type === 'leftover' ? [event.leftover.action] : [])), ['restored', 'removed']);
    assert.deepEqual([...(await snapshot(output)).keys()].sort(), nextFiles);
    assert.ok(!existsSync(staging));
    // Another directory in its place is not the one it was allowed to replace: left alone, as the finished output is.
    await convert({ input: [input], output: path.join(dir, 'third'), seed: 8 });
    await rename(path.join(dir, 'third'), staging);
    await remark(staging, { kind: 'staging', name: path.basename(staging), output: 'out', state: 'publishing', replaces });
    await rename(output, path.join(dir, 'kept'));
    await mkdir(output);
    await writeFile(path.join(output, 'mine.txt'), 'mine');
    await assert.rejects(convert({ input: [input], output }), refusedWith('ERR_OUTPUT_EXISTS'));
    await assert.rejects(convert({ input: [input], output, overwrite: true }), refusedWith('ERR_OUTPUT_NOT_OURS'));
    assert.deepEqual(await readdir(output), ['mine.txt']);
    assert.ok(existsSync(path.join(staging, 'report.json')), 'the finished output still waits');
  });

  it('is not replaced by a run whose staging directory is no longer its own (its lock taken over): nothing moves', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    await mkdir(output);
    await writeFile(path.join(output, 'report.json'), '{}');
    const staging = await openStaging(path.join(dir, 'out.partial'), 'staging', output);
    await writeFile(path.join(staging.dir, 'lock.json'), JSON.stringify({ host: 'another-host', pid: 7, token: 'theirs' }));
    await assert.rejects(publishOutput(staging, output, await outputIdentity(output)), /is no longer this run's: process 7 on another-host holds it now/);
    assert.deepEqual((await readdir(dir)).sort(), ['out', 'out.partial']);
    assert.deepEqual(await readdir(output), ['report.json']);
    await staging.release();
  });

  it('is never a directory that appeared, or took the approved one\'s place, while the run worked: it is left alone, and the finished output waits', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    // Made while the run converts: after its start (when nothing was there), before it publishes.
    let appeared = false;
    const events = convertIter({ input: [input], output });
    await assert.rejects(async () => {
      for await (const event of events) {
        if (!appeared && event.type === 'planned') {
          await mkdir(output);
          await writeFile(path.join(output, 'thesis.txt'), 'my thesis');
          appeared = true;
        }
      }
    }, refusedWith('ERR_OUTPUT_CHANGED'));
    assert.deepEqual(await readdir(output), ['thesis.txt']);
    assert.ok(existsSync(path.join(`${output}.partial`, 'report.json')), 'the finished output waits in the staging directory');
    // Moved away, the same command again puts the finished output in place at once, and is done.
    await rename(output, path.join(dir, 'thesis'));
    const next: ConvertEvent[] = [];
    for await (const event of convertIter({ input: [input], output })) next.push(event);
    assert.deepEqual(next.flatMap((event) => (event.type === 'leftover' ? [event.leftover.action] : [])), ['restored']);
    assert.equal(next.at(-1)?.type, 'done');
    assert.ok(!next.some((event) => event.type === 'progress'), 'nothing converted again');
    assert.ok((await readdir(output)).includes('report.json'));
    assert.equal(await readFile(path.join(dir, 'thesis', 'thesis.txt'), 'utf8'), 'my thesis');
  });

  it('marks a published output as the output under its name: renamed, it is taken for nothing, not even as a staging directory', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    await convert({ input: [input], output });
    const marker = JSON.parse(await readFile(path.join(output, MARKER_FILE), 'utf8')) as { kind: string; name: string; state?: string };
    assert.deepEqual([marker.kind, marker.name, marker.state], ['output', 'out', undefined]);
    await rename(output, `${output}.partial`);
    await writeFile(path.join(`${output}.partial`, 'notes.md'), 'mine');
    await assert.rejects(convert({ input: [input], output }), refusedWith('ERR_OUTPUT_NOT_OURS'));
    assert.equal(await readFile(path.join(`${output}.partial`, 'notes.md'), 'utf8'), 'mine');
    // A report.json of this tool copied into a folder of the user's does not make it an output to replace.
    const analysis = path.join(dir, 'analysis');
    await mkdir(analysis);
    await writeFile(path.join(analysis, 'notes.md'), 'mine');
    await writeFile(path.join(analysis, 'report.json'), JSON.stringify({ tool: { name: 'rlaif-v-convert' }, output: { dir: path.join(dir, 'elsewhere') } }));
    await assert.rejects(convert({ input: [input], output: analysis, overwrite: true }), refusedWith('ERR_OUTPUT_NOT_OURS'));
    assert.deepEqual((await readdir(analysis)).sort(), ['notes.md', 'report.json']);
  });

  it('refuses symbolic links in the place of the output or its staging directory', async () => {
    const dir = await tempDir();
    const target = path.join(dir, 'target');
    await mkdir(target);
    await symlink(target, path.join(dir, 'out'));
    await assert.rejects(convert({ input: [input], output: path.join(dir, 'out'), overwrite: true }), refusedWith('ERR_OUTPUT_IS_FILE'));
    await symlink(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
    await assert.rejects(convert({ input: [input], output: path.join(dir, 'dangling') }), refusedWith('ERR_OUTPUT_IS_FILE'));
    await symlink(target, path.join(dir, 'other.partial'));
    await assert.rejects(convert({ input: [input], output: path.join(dir, 'other') }), refusedWith('ERR_OUTPUT_NOT_OURS'));
    assert.deepEqual(await readdir(target), []);
  });

  it('is made with its missing parents, or refused in one line: under a file, or where nothing can be made', async () => {
    const dir = await tempDir();
    const nested = path.join(dir, 'new', 'parents', 'out');
    await convert({ input: [input], output: nested });
    assert.ok((await readdir(nested)).includes('report.json'));
    await writeFile(path.join(dir, 'afile'), 'x');
    const convertTo = (output: string): string[] => ['convert', '-i', input, '-o', output, '--quiet'];
    const cases: [string[], RegExp][] = [[convertTo(path.join(dir, 'afile', 'sub')), /cannot be made: .*afile is a file, not a directory/]];
    // /proc accepts no new directory; Node's recursive mkdir looped there forever (ENOENT, then EEXIST).
    if (existsSync('/proc/self')) {
      cases.push([convertTo('/proc/rlaif-v-out'), /^rlaif-v: Cannot write the staging directory of \/proc\/rlaif-v-out: making \/proc\/rlaif-v-out\.partial failed \(ENOENT\)/]);
      cases.push([['sample', '--rows', '4', '--output', '/proc/rlaif-v-sample'], /^rlaif-v: Cannot write the sample: making \/proc\/rlaif-v-sample failed \(ENOENT\)/]);
    }
    // sysfs refuses new directories even to root.
    if (existsSync('/sys/kernel')) cases.push([convertTo('/sys/rlaif-v-out'), /^rlaif-v: Cannot write the staging directory of \/sys\/rlaif-v-out: making \/sys\/rlaif-v-out\.partial failed \((EPERM|EACCES|ENOENT)\)/]);
    for (const [args, message] of cases) {
      const output = args.join(' ');
      const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(run.status, 2, `${output}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
  });
});
