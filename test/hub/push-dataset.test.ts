import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../../src/run/convert.js';
import { HubError, InputError } from '../../src/errors.js';
import { hubSettings, type HubSettings } from '../../src/hub/hub-settings.js';
import { push, pushIter, type PushEvent } from '../../src/hub/push-dataset.js';
import { runCli, sampleDir, tempDir } from '../support/fixtures.js';
import { cardForRepo } from '../../src/output/load-line.js';
import { pushKilledAfterFirstUpload } from '../support/killed-push.js';
import { LocalHub, TEST_TOKEN } from '../support/hub-server.js';

let hub: LocalHub;
let output: string;
let shards: string[];

before(async () => {
  hub = await LocalHub.start();
  const input = await sampleDir(80);
  output = path.join(await tempDir(), 'out');
  await convert({ input: [input], output, numProc: 1, maxShardSize: '60KB', testSize: 0.1 });
  shards = (await readdir(path.join(output, 'data'))).sort().map((name) => `data/${name}`);
  assert.ok(shards.length >= 5, `several shards to push: ${shards.length}`);
});
after(() => hub.close());

async function settings(token: string | null = TEST_TOKEN): Promise<HubSettings> {
  return hubSettings({ env: { HF_HOME: await tempDir(), HF_ENDPOINT: hub.url, ...(token === null ? {} : { HF_TOKEN: token }) }, retry: { baseDelayMs: 1 } });
}

async function assertRepoEqualsOutput(repo: string): Promise<void> {
  const head = hub.head(repo);
  assert.deepEqual([...head.keys()].sort(), [...shards, 'README.md'].sort());
  for (const name of shards) assert.deepEqual(await hub.content(repo, name), await readFile(path.join(output, name)), name);
  // The card as pushed loads the repo, not the local directory.
  assert.equal((await hub.content(repo, 'README.md')).toString('utf8'), cardForRepo(await readFile(path.join(output, 'README.md'), 'utf8'), repo));
  assert.match((await hub.content(repo, 'README.md')).toString('utf8'), new RegExp(`dataset = load_dataset\\("${repo}"\\)`));
}

describe('push', () => {
  it('creates the repo, commits the shards in commits of at most filesPerCommit files, and the card last', async () => {
    const report = await push({ dir: output, repoId: 'me/rlaif-v', private: true, filesPerCommit: 2, settings: await settings() });
    assert.equal(hub.isPrivate('me/rlaif-v'), true);
    await assertRepoEqualsOutput('me/rlaif-v');
    const commits = hub.commits('me/rlaif-v').slice(1); // the first is the repo's creation
    assert.equal(commits.length, Math.ceil(shards.length / 2) + 1);
    for (const commit of commits.slice(0, -1)) assert.ok(!commit.paths.includes('README.md'), 'no card before every shard is there');
    assert.ok(commits.at(-2)?.paths.every((name) => name !== 'README.md'));
    assert.ok(commits.at(-1)?.paths.includes('README.md'));
    assert.deepEqual(report.uploaded, shards);
    assert.equal(report.commits.length, commits.length);
    for (const count of hub.uploads.values()) assert.equal(count, 1);
    // This Hub offers no Xet: every byte goes up, as whole LFS objects.
    assert.equal(report.transfer, 'lfs');
    assert.equal(report.bytesSent, report.bytesInFiles);
    assert.equal(report.bytesDeduplicated, 0);
    // The deprecated name of bytesInFiles, for readers of reports made before Xet.
    assert.equal(report.bytesUploaded, report.bytesInFiles);
  });

  it('commits nothing when the repo already holds the same files', async () => {
    const before = hub.commits('me/rlaif-v').length;
    const report = await push({ dir: output, repoId: 'me/rlaif-v', settings: await settings() });
    assert.deepEqual(report.uploaded, []);
    assert.deepEqual(report.skipped, shards);
    assert.equal(hub.commits('me/rlaif-v').length, before);
    assert.equal(report.bytesSent, 0);
    assert.equal(report.transfer, null);
  });

  it('survives 500s, a 429 with Retry-After and an upload dropped midway, sending each object once', async () => {
    const waits: number[] = [];
    const config = await settings();
    config.retry = { baseDelayMs: 1, sleep: async (ms) => void waits.push(ms) };
    hub.fail({ match: /^POST \/api\/datasets\/me\/faults\/preupload/, kind: 'status', status: 500 });
    hub.fail({ match: /^POST \/datasets\/me\/faults\.git\/info\/lfs/, kind: 'status', status: 429, retryAfter: 5 });
    hub.fail({ match: /^PUT \/lfs-upload\//, kind: 'drop-upload', afterBytes: 1000 });
    hub.fail({ match: /^PUT \/lfs-upload\//, kind: 'status', status: 503 });
    hub.fail({ match: /^POST \/api\/datasets\/me\/faults\/commit/, kind: 'status', status: 502, times: 2 });
    const events: PushEvent[] = [];
    for await (const event of pushIter({ dir: output, repoId: 'me/faults', settings: config })) events.push(event);
    assert.equal(hub.pendingFaults, 0);
    assert.ok(waits.includes(5000), `Retry-After honoured: ${waits.join(', ')}`);
    assert.ok(events.filter((event) => event.type === 'retry').length >= 6, 'every retry is reported');
    await assertRepoEqualsOutput('me/faults');
  });

  it('uploads large shards in parts when the Hub asks for multipart, through a part dropped midway', async () => {
    hub.multipartChunkSize = 16 * 1024;
    const partsBefore = hub.partUploads;
    try {
      hub.fail({ match: /^PUT \/lfs-part\/me\/multipart\//, kind: 'drop-upload', afterBytes: 5000 });
      const report = await push({ dir: output, repoId: 'me/multipart', settings: await settings() });
      assert.equal(hub.pendingFaults, 0);
      assert.deepEqual(report.uploaded, shards);
      assert.ok(hub.partUploads - partsBefore > shards.length, `uploaded in parts: ${hub.partUploads - partsBefore}`);
      await assertRepoEqualsOutput('me/multipart');
    } finally {
      hub.multipartChunkSize = null;
    }
  });

  it('removes old shards the new output does not have, in the card commit', async () => {
    const config = await settings();
    const other = path.join(await tempDir(), 'other');
    await convert({ input: [await sampleDir(30, { seed: 9 })], output: other, numProc: 1, maxShardSize: '1MB' });
    await push({ dir: other, repoId: 'me/reshard', settings: config });
    const report = await push({ dir: output, repoId: 'me/reshard', settings: config });
    assert.ok(report.deleted.length > 0 || shards.every((name) => name !== 'data/train-00000-of-00001.parquet'));
    await assertRepoEqualsOutput('me/reshard');
    assert.ok(hub.commits('me/reshard').at(-1)?.paths.includes('README.md'));
  });

  it('fails before any request without a token, saying how to log in', async () => {
    const mark = hub.requests.length;
    await assert.rejects(push({ dir: output, repoId: 'me/none', settings: await settings(null) }), (error: unknown) => {
      return error instanceof HubError && error.code === 'ERR_HUB_NO_TOKEN' && /hf auth login/.test(error.message);
    });
    assert.equal(hub.requests.length, mark);
  });

  it('refuses to push with HF_HUB_OFFLINE set, before any request', async () => {
    const mark = hub.requests.length;
    const offline = await hubSettings({ env: { HF_HOME: await tempDir(), HF_ENDPOINT: hub.url, HF_TOKEN: TEST_TOKEN, HF_HUB_OFFLINE: '1' } });
    await assert.rejects(push({ dir: output, repoId: 'me/offline', settings: offline }), (error: unknown) => error instanceof HubError && error.code === 'ERR_HUB_OFFLINE');
    assert.equal(hub.requests.length, mark);
  });

  it('refuses a directory that is not a converted dataset', async () => {
    await assert.rejects(push({ dir: await tempDir(), repoId: 'me/x', settings: await settings() }), (error: unknown) => error instanceof InputError && error.code === 'ERR_PUSH_NOT_DATASET');
  });
});

describe('rlaif-v push', () => {
  it('killed midway, then run again, completes without sending any object twice', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_TOKEN: TEST_TOKEN, HF_HOME: await tempDir() };
    // The first upload goes through; the others hang until the push is killed, so it stops after exactly one.
    const first = await pushKilledAfterFirstUpload(hub, /^PUT \/lfs-upload\/me\/killed\//, ['push', output, '--repo-id', 'me/killed'], env);
    assert.equal(first.code, null, 'killed by the signal');
    assert.ok(!hub.head('me/killed').has('README.md'), `no card after an interrupted push: ${JSON.stringify(hub.commits('me/killed'))} ${first.stderr}`);
    const storedBeforeRerun = [...hub.uploads.keys()].filter((key) => key.startsWith('me/killed:'));
    assert.equal(storedBeforeRerun.length, 1, 'stopped after one upload');
    const second = await runCli(['push', output, '--repo-id', 'me/killed'], { env });
    assert.equal(second.code, 0, second.stderr);
    await assertRepoEqualsOutput('me/killed');
    const uploaded = [...hub.uploads.entries()].filter(([key]) => key.startsWith('me/killed:'));
    assert.equal(uploaded.length, shards.length);
    for (const [key, count] of uploaded) assert.equal(count, 1, `object ${key} uploaded ${count} times`);
    assert.doesNotMatch(first.stderr + second.stderr, new RegExp(TEST_TOKEN));
  });
});
