import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { convert, convertIter } from '../src/convert.js';
import type { ConvertEvent } from '../src/convert-report.js';
import { OutputError } from '../src/errors.js';
import { publishOutput } from '../src/output-dir.js';
import { CLI, sampleDir, tempDir } from './fixtures.js';

/** The id of a process that has ended: what a killed run leaves in its leftovers' names. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(child.pid !== undefined);
  return child.pid;
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

  it('is cleared of what killed runs on this host left, and a previous output they had moved aside is put back', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    const dead = await deadPid();
    const leftovers = {
      staging: `${output}.partial-${hostname()}-${dead}`,
      legacy: `${output}.partial-${dead}`,
      live: `${output}.partial-${hostname()}-${process.ppid}`,
      elsewhere: `${output}.partial-another-host-${dead}`,
      previous: `${output}.old-${hostname()}-${dead}`,
      // What a finalize on another machine was removing when it died: rubbish whoever left it.
      removing: `${output}.removing-another-host-${dead}`,
    };
    for (const leftover of Object.values(leftovers)) {
      await mkdir(path.join(leftover, 'data'), { recursive: true });
      await writeFile(path.join(leftover, 'data', 'train-00000-of-00001.parquet'), 'partial');
    }
    // The previous output: a finished one, moved aside by a run that died before its new output was in place.
    await convert({ input: [input], output: path.join(dir, 'finished') });
    await writeFile(leftovers.previous + '/report.json', await readFile(path.join(dir, 'finished', 'report.json')));

    const events: ConvertEvent[] = [];
    const run = async (): Promise<void> => {
      for await (const event of convertIter({ input: [input], output })) events.push(event);
    };
    // Put back, the previous output is protected as any other: not replaced without overwrite.
    await assert.rejects(run(), refusedWith('ERR_OUTPUT_EXISTS'));
    const seen = events.flatMap((event) => (event.type === 'leftover' ? [`${event.leftover.action} ${path.basename(event.leftover.path)}`] : []));
    assert.deepEqual(seen.sort(), [
      `removed ${path.basename(leftovers.legacy)}`,
      `removed ${path.basename(leftovers.removing)}`,
      `removed ${path.basename(leftovers.staging)}`,
      `restored ${path.basename(leftovers.previous)}`,
    ].sort());
    const names = await readdir(dir);
    assert.deepEqual(names.sort(), ['finished', 'out', path.basename(leftovers.elsewhere), path.basename(leftovers.live)].sort());
    assert.ok((await readdir(output)).includes('report.json'));
  });

  it('is put back when the new one cannot be moved into place', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    await mkdir(output);
    await writeFile(path.join(output, 'report.json'), '{}');
    await assert.rejects(publishOutput(path.join(dir, 'no-such-staging'), output), /ENOENT/);
    assert.deepEqual(await readdir(dir), ['out']);
    assert.deepEqual(await readdir(output), ['report.json']);
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
      cases.push([convertTo('/proc/rlaif-v-out'), /^rlaif-v: Cannot write the output: making \/proc\/rlaif-v-out\.partial failed \(ENOENT\)/]);
      cases.push([['sample', '--rows', '4', '--output', '/proc/rlaif-v-sample'], /^rlaif-v: Cannot write the sample: making \/proc\/rlaif-v-sample failed \(ENOENT\)/]);
    }
    // sysfs refuses new directories even to root.
    if (existsSync('/sys/kernel')) cases.push([convertTo('/sys/rlaif-v-out'), /^rlaif-v: Cannot write the output: making \/sys\/rlaif-v-out\.partial failed \((EPERM|EACCES|ENOENT)\)/]);
    for (const [args, message] of cases) {
      const output = args.join(' ');
      const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(run.status, 2, `${output}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
  });
});
