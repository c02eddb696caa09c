/** The whole Hub path as a user runs it: convert --dataset ... --push-to-hub against a local Hub that misbehaves. */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convertIter } from '../src/run/convert.js';
import type { ConvertEvent } from '../src/run/convert-report.js';
import { hubSettings } from '../src/hub/hub-settings.js';
import { cardForRepo } from '../src/output/load-line.js';
import { resolveDataset } from '../src/hub/resolve-dataset.js';
import { runCli, sampleDir, tempDir } from './fixtures.js';
import { LocalHub, TEST_TOKEN } from './hub-server.js';

const REPO = 'openbmb/RLAIF-V-Dataset';
let hub: LocalHub;
let source: string;
let names: string[];

before(async () => {
  hub = await LocalHub.start();
  source = await sampleDir(120, { files: 3 });
  names = (await readdir(source)).sort();
  await hub.createDataset(REPO, names.map((name) => ({ path: name, file: path.join(source, name) })));
});
after(() => hub.close());

/** A file of an output as a push puts it on the Hub: the card loads the repo rather than the local directory. */
async function pushedForm(dir: string, name: string, repoId: string): Promise<Buffer> {
  const bytes = await readFile(path.join(dir, name));
  return name === 'README.md' ? Buffer.from(cardForRepo(bytes.toString('utf8'), repoId)) : bytes;
}

async function files(dir: string): Promise<string[]> {
  return [...(await readdir(path.join(dir, 'data'))).map((name) => `data/${name}`), 'README.md'].sort();
}

describe('rlaif-v convert --dataset --push-to-hub', () => {
  it('downloads, converts and pushes through every injected fault; the Hub ends up with the output byte for byte', async () => {
    const home = await tempDir('rlaif-v-hf-home-');
    const out = path.join(await tempDir(), 'out');
    const env = { HF_ENDPOINT: hub.url, HF_HOME: home, HF_TOKEN: TEST_TOKEN };
    hub.fail({ match: /^GET \/api\/datasets\/openbmb\/RLAIF-V-Dataset\/tree\//, kind: 'status', status: 500 });
    hub.fail({ match: /^GET \/datasets\/openbmb\/.*\/resolve\//, kind: 'status', status: 429, retryAfter: 1 });
    hub.fail({ match: /^GET \/datasets\/openbmb\/.*\/resolve\/.*_001\.parquet$/, kind: 'drop-download', afterBytes: 30_000, ranged: false });
    hub.fail({ match: /^PUT \/lfs-upload\/me\/round\//, kind: 'drop-upload', afterBytes: 4096 });
    hub.fail({ match: /^POST \/api\/datasets\/me\/round\/commit\//, kind: 'status', status: 503 });
    const result = await runCli(['convert', '--output', out, '--push-to-hub', '--repo-id', 'me/round', '--max-shard-size', '100KB', '--num-proc', '1'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(hub.pendingFaults, 0, 'every fault was met');
    assert.match(result.stderr, /Source: openbmb\/RLAIF-V-Dataset at main/);
    assert.match(result.stderr, /Hub: .* answered 429 .*; trying again in 1s/);
    assert.match(result.stderr, /Pushed to .*me\/round/);
    assert.doesNotMatch(result.stderr + result.stdout, new RegExp(TEST_TOKEN));
    const pushed = [...hub.head('me/round').keys()].sort();
    assert.deepEqual(pushed, await files(out));
    for (const name of pushed) assert.deepEqual(await hub.content('me/round', name), await pushedForm(out, name, 'me/round'), name);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { input: { dataset: { commit: string; filesDownloaded: number } } };
    assert.equal(report.input.dataset.filesDownloaded, 3);
    assert.doesNotMatch(JSON.stringify(report), new RegExp(TEST_TOKEN));

    // The same files converted from disk give the same bytes: the Hub path changes where rows come from, nothing else.
    const local = path.join(await tempDir(), 'local');
    const fromDisk = await runCli(['convert', '--input', source, '--output', local, '--max-shard-size', '100KB', '--num-proc', '1', '--quiet']);
    assert.equal(fromDisk.code, 0, fromDisk.stderr);
    for (const name of (await files(local)).filter((file) => file.startsWith('data/'))) {
      assert.deepEqual(await readFile(path.join(local, name)), await readFile(path.join(out, name)), name);
    }

    // Run again: nothing is downloaded, nothing is committed.
    const mark = hub.requests.length;
    const commits = hub.commits('me/round').length;
    const again = await runCli(['convert', '--output', out, '--overwrite', '--push-to-hub', '--repo-id', 'me/round', '--max-shard-size', '100KB', '--num-proc', '1'], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(hub.bodyDownloads(mark).filter((request) => request.endsWith('.parquet')), [], 'no dataset file is downloaded again (its card is read anew)');
    assert.equal(hub.commits('me/round').length, commits);
    assert.match(again.stderr, /3 already in the cache/);
  });

  it('in parts: each part downloads only the files its rows are in, and finalize --push-to-hub pushes the whole output', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HOME: await tempDir('rlaif-v-hf-home-'), HF_TOKEN: TEST_TOKEN };
    const out = path.join(await tempDir(), 'out');
    const common = ['--output', out, '--max-shard-size', '100KB', '--num-proc', '1', '--quiet', '--num-shards', '3'];
    const mark = hub.requests.length;
    const first = await runCli(['convert', ...common, '--shard-index', '0'], { env });
    assert.equal(first.code, 0, first.stderr);
    const fetched = hub.bodyDownloads(mark).filter((request) => request.endsWith('.parquet'));
    assert.ok(fetched.length >= 1 && fetched.length < 3, `part 0 of 3 downloaded ${fetched.join(', ')}`);
    for (const index of ['1', '2']) assert.equal((await runCli(['convert', ...common, '--shard-index', index], { env })).code, 0);
    const done = await runCli(['finalize', out, '--push-to-hub', '--repo-id', 'me/parts'], { env });
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stderr, /Pushed to .*me\/parts/);
    const pushed = [...hub.head('me/parts').keys()].sort();
    assert.deepEqual(pushed, await files(out));
    for (const name of pushed) assert.deepEqual(await hub.content('me/parts', name), await pushedForm(out, name, 'me/parts'), name);
  });

  it('slurm pins the dataset to one commit for every part, and submits finalize after the array', async () => {
    // A stand-in sbatch that notes how it was called and answers with a job id, as `sbatch --parsable` does.
    const bin = await tempDir();
    const calls = path.join(bin, 'calls');
    await writeFile(path.join(bin, 'sbatch'), `#!/bin/sh\necho "$@" >> ${calls}\necho 4242\n`, { mode: 0o755 });
    const env = { HF_ENDPOINT: hub.url, HF_HOME: await tempDir('rlaif-v-hf-home-'), PATH: `${bin}:${process.env.PATH ?? ''}` };
    const out = path.join(await tempDir(), 'out');
    const result = await runCli(['slurm', '-o', out, '--tasks', '2', '--json'], { env });
    assert.equal(result.code, 0, result.stderr);
    const jobs = JSON.parse(result.stdout) as { arrayJob: string; finalizeJob: string; scripts: { convert: string; finalize: string } };
    assert.equal(jobs.arrayJob, '4242');
    const commit = (await resolveDataset({ repo: REPO, settings: await hubSettings({ env }) })).commit;
    assert.match(await readFile(jobs.scripts.convert, 'utf8'), new RegExp(` convert -o \\S+out --revision ${commit} --num-shards 2 --shard-index`));
    assert.deepEqual((await readFile(calls, 'utf8')).trim().split('\n'), [
      `--parsable ${jobs.scripts.convert}`,
      `--parsable --dependency=afterok:4242 --kill-on-invalid-dep=yes ${jobs.scripts.finalize}`,
    ]);
  });

  it('converts a converted dataset on the Hub (trl-lib/rlaif-v\'s format) again: the same rows, split anew', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HOME: await tempDir('rlaif-v-hf-home-') };
    const first = path.join(await tempDir(), 'first');
    assert.equal((await runCli(['convert', '-i', source, '-o', first, '--quiet'])).code, 0);
    const shards = (await files(first)).filter((name) => name.endsWith('.parquet'));
    await hub.createDataset('me/converted', [...shards, 'README.md'].map((name) => ({ path: name, file: path.join(first, name) })));
    const again = path.join(await tempDir(), 'again');
    const result = await runCli(['convert', '--dataset', 'me/converted', '-o', again, '--seed', '5', '--test-size', '12', '--json'], { env });
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { input: { rows: number }; output: { splits: { train: { rows: number }; test: { rows: number } } } };
    assert.deepEqual([report.input.rows, report.output.splits.train.rows, report.output.splits.test.rows], [120, 108, 12]);
    const verified = await runCli(['verify', again, '--quiet']);
    assert.equal(verified.code, 0, verified.stderr);
  });

  it('with --push-to-hub and no token, fails before any work and says how to log in', async () => {
    const out = path.join(await tempDir(), 'out');
    const mark = hub.requests.length;
    const result = await runCli(['convert', '--output', out, '--push-to-hub'], { env: { HF_ENDPOINT: hub.url, HF_HOME: await tempDir(), HF_TOKEN: '' } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /needs a Hugging Face token.*hf auth login.*HF_TOKEN.*--token/s);
    assert.equal(hub.requests.length, mark, 'no request was made');
    await assert.rejects(stat(out), { code: 'ENOENT' });
  });

  it('with a token the Hub refuses, fails before any download, without showing the token', async () => {
    const out = path.join(await tempDir(), 'out');
    const mark = hub.requests.length;
    const result = await runCli(['convert', '--output', out, '--push-to-hub', '--repo-id', 'me/refused'], {
      env: { HF_ENDPOINT: hub.url, HF_HOME: await tempDir(), HF_TOKEN: 'hf_notatokenthehubknows' },
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /refused the token from HF_TOKEN \(401\).*hf auth login/);
    assert.doesNotMatch(result.stderr, /hf_notatokenthehubknows/);
    assert.deepEqual(hub.requests.slice(mark).map((request) => request.path), ['/api/whoami-v2']);
    await assert.rejects(stat(out), { code: 'ENOENT' });
  });

  it('names an unknown dataset or revision and exits 2', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HOME: await tempDir() };
    const out = path.join(await tempDir(), 'out');
    const noRepo = await runCli(['convert', '--output', out, '--dataset', 'someone/missing'], { env });
    assert.equal(noRepo.code, 2);
    assert.match(noRepo.stderr, /Dataset someone\/missing was not found on http:\/\/127\.0\.0\.1:\d+\. Check --dataset/);
    const noRevision = await runCli(['convert', '--output', out, '--revision', 'v2.0'], { env });
    assert.equal(noRevision.code, 2);
    assert.match(noRevision.stderr, /Dataset openbmb\/RLAIF-V-Dataset has no revision "v2\.0".*--revision/);
    await assert.rejects(stat(out), { code: 'ENOENT' });
  });
});

describe('convertIter from the Hub', () => {
  it('converts the first file while a later one is still downloading', async () => {
    let release = (): void => undefined;
    const until = new Promise<void>((resolve) => (release = resolve));
    hub.fail({ match: /^GET \/datasets\/openbmb\/.*\/resolve\/.*_002\.parquet$/, kind: 'stall', until, ranged: false });
    const settings = await hubSettings({ env: { HF_ENDPOINT: hub.url, HF_HOME: await tempDir() }, retry: { baseDelayMs: 1 } });
    const events: ConvertEvent[] = [];
    let rowsWhileStalled = 0;
    for await (const event of convertIter({ dataset: REPO, output: path.join(await tempDir(), 'out'), hub: settings, numProc: 1, writerBatchSize: 8 })) {
      events.push(event);
      if (event.type === 'progress' && event.stage === 'convert' && rowsWhileStalled === 0 && event.done > 0) {
        rowsWhileStalled = event.done;
        release();
      }
    }
    // The stalled request is the third file's download: rows converted before it was let go came from earlier files.
    assert.ok(rowsWhileStalled > 0, 'rows were converted while the last file was held back');
    const downloads = events.filter((event) => event.type === 'download');
    assert.ok(downloads.length > 0, 'download progress was reported');
    const done = events.at(-1);
    assert.equal(done?.type === 'done' ? done.report.output.rows + done.report.rejected.rows : 0, 120);
  });

  it('stops the downloads it started when the run fails before converting', async () => {
    let release = (): void => undefined;
    const until = new Promise<void>((resolve) => (release = resolve));
    hub.fail({ match: /^GET \/datasets\/openbmb\/.*\/resolve\/.*_002\.parquet$/, kind: 'stall', until, ranged: false });
    const home = await tempDir();
    const settings = await hubSettings({ env: { HF_ENDPOINT: hub.url, HF_HOME: home }, retry: { baseDelayMs: 1 } });
    // Planning fails after the footers are read, with the downloads already under way: more test rows than rows.
    await assert.rejects(async () => {
      for await (const event of convertIter({ dataset: REPO, output: path.join(await tempDir(), 'out'), hub: settings, testSize: 100_000 })) void event;
    }, /test/i);
    // Were the downloads still running, the third file would land in the cache once its request is let go.
    release();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const blobs = await readdir(path.join(home, 'hub', 'datasets--openbmb--RLAIF-V-Dataset', 'blobs')).catch(() => [] as string[]);
    assert.equal(blobs.filter((name) => !name.endsWith('.incomplete')).length < 3, true, blobs.join(' '));
  });
});
