import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { convert } from '../../src/run/convert.js';
import { makeSample, sampleFileName } from '../../src/source/make-sample.js';
import { writeSourceFile } from '../../src/source/source-rows-to-arrow.js';
import type { SourceRow } from '../../src/source/source-row.js';
import { hubSettings, type HubSettings } from '../../src/hub/hub-settings.js';
import { push, pushIter, type PushEvent, type PushReport } from '../../src/hub/push-dataset.js';
import { readParquet, runCli, tempDir } from '../support/fixtures.js';
import { pushKilledAfterFirstUpload } from '../support/killed-push.js';
import { LocalHub, TEST_TOKEN } from '../support/hub-server.js';

/**
 * Re-pushes through Xet against the local Hub, on data shaped like the source (photos and PNGs stored raw in the
 * parquet, about 156 KB a row), in shards small enough that every change moves rows across several of them.
 */
const ROWS = 300;
const MAX_SHARD = '8MB';

let input: string;
let base: string;
const hubs: LocalHub[] = [];

async function startHub(xet: boolean): Promise<LocalHub> {
  const hub = await LocalHub.start();
  hub.xet = xet;
  hubs.push(hub);
  return hub;
}

async function settings(hub: LocalHub): Promise<HubSettings> {
  return hubSettings({ env: { HF_HOME: await tempDir(), HF_ENDPOINT: hub.url, HF_TOKEN: TEST_TOKEN }, retry: { baseDelayMs: 1 } });
}

async function convertTo(source: string, options: { testSize?: number } = {}): Promise<string> {
  const output = path.join(await tempDir(), 'out');
  await convert({ input: [source], output, numProc: 1, maxShardSize: MAX_SHARD, ...options });
  return output;
}

async function dataFiles(output: string): Promise<string[]> {
  return (await readdir(path.join(output, 'data'))).sort().map((name) => `data/${name}`);
}

async function outputBytes(output: string): Promise<number> {
  let bytes = 0;
  for (const name of await dataFiles(output)) bytes += (await stat(path.join(output, name))).size;
  return bytes;
}

/** The repo's data files are the output's, byte for byte, as the Hub rebuilt them from the xorbs. */
async function assertRepoHolds(hub: LocalHub, repo: string, output: string): Promise<void> {
  const names = await dataFiles(output);
  assert.deepEqual([...hub.head(repo).keys()].filter((name) => name.startsWith('data/')).sort(), names);
  for (const name of names) assert.ok((await hub.content(repo, name)).equals(await readFile(path.join(output, name))), `${name} as pushed equals the local file`);
}

/** Pushes, checking that what the report says was sent is what the Hub received. */
async function pushCounted(hub: LocalHub, output: string, repo: string): Promise<PushReport> {
  const before = { ...hub.xetStore.traffic };
  const report = await push({ dir: output, repoId: repo, settings: await settings(hub) });
  const { traffic } = hub.xetStore;
  assert.equal(report.bytesSent, traffic.xorbBytes - before.xorbBytes + traffic.shardBytes - before.shardBytes, 'the report counts what the Hub received');
  return report;
}

function describeReport(t: TestContext, what: string, report: PushReport, total: number): void {
  t.diagnostic(
    `${what}: ${report.uploaded.length} file(s), ${report.bytesInFiles} B in files, ${report.bytesSent} B sent ` +
      `(${((report.bytesSent / total) * 100).toFixed(1)}% of the output's ${total} B), ${report.bytesDeduplicated} B deduplicated`,
  );
}

/** The source without its row `index`: a row deleted upstream. */
async function withoutRow(source: string, index: number): Promise<string> {
  const { table } = await readParquet(path.join(source, sampleFileName(0)));
  const rows = table.toArray().map((row): SourceRow => {
    const value = row.toJSON() as Record<string, unknown>;
    const image = value.image as SourceRow['image'];
    return { ...(value as unknown as SourceRow), image: image === null ? null : { bytes: image.bytes, path: image.path } };
  });
  const dir = await tempDir('rlaif-v-sample-');
  await writeSourceFile(path.join(dir, sampleFileName(0)), [...rows.slice(0, index), ...rows.slice(index + 1)]);
  return dir;
}

const converted = new Map<string, Promise<string>>();

/** An output made once for the tests that re-push it: the conversion again with --test-size 0.02, or without a row. */
function reconverted(change: 'test-size' | 'row-deleted'): Promise<string> {
  let output = converted.get(change);
  if (output === undefined) {
    output = change === 'test-size' ? convertTo(input, { testSize: 0.02 }) : withoutRow(input, Math.floor(ROWS / 3)).then((source) => convertTo(source));
    converted.set(change, output);
  }
  return output;
}

/** The ranged reads of `repo`'s files (the heads of earlier versions) among the Hub's requests from `from` on. */
function headReads(hub: LocalHub, repo: string, from: number): { path: string; status: number }[] {
  return hub.requests.slice(from).filter((request) => request.method === 'GET' && request.path.startsWith(`/datasets/${repo}/resolve/`) && request.range !== undefined);
}

/**
 * An output with the data files of `output` (their names) cut to `sizes` (in turn): the first bytes of each file, or
 * for every other one bytes of no file, so that a re-push of `output` edits earlier versions of 128 KiB or less.
 */
async function shortened(output: string, sizes: number[]): Promise<string> {
  const dir = path.join(await tempDir(), 'short');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await copyFile(path.join(output, 'README.md'), path.join(dir, 'README.md'));
  for (const [index, name] of (await dataFiles(output)).entries()) {
    const size = sizes[index % sizes.length] ?? 0;
    const content = index % 2 === 0 ? (await readFile(path.join(output, name))).subarray(0, size) : Buffer.alloc(size, index);
    await writeFile(path.join(dir, name), content);
  }
  return dir;
}

/** Pushes `earlier`, then `output` over it: every file as the Hub holds it must be the local one, byte for byte. */
async function assertRepushHolds(hub: LocalHub, repo: string, earlier: string, output: string): Promise<PushReport> {
  await push({ dir: earlier, repoId: repo, settings: await settings(hub) });
  await assertRepoHolds(hub, repo, earlier);
  const mark = hub.requests.length;
  const report = await push({ dir: output, repoId: repo, settings: await settings(hub) });
  await assertRepoHolds(hub, repo, output);
  // Each file was read from where the earlier version was stored with Xet (one ranged read each): the edit path was taken.
  assert.equal(headReads(hub, repo, mark).length, report.uploaded.length);
  return report;
}

before(async () => {
  input = await tempDir('rlaif-v-sample-');
  await makeSample({ rows: ROWS, output: input, profile: 'source' });
  base = await convertTo(input);
  assert.ok((await dataFiles(base)).length >= 5, 'several shards');
});
after(async () => {
  for (const hub of hubs) await hub.close();
});

describe('push through Xet', () => {
  it('sends at most 10% of the output again after a conversion with --test-size 0.02', async (t) => {
    const hub = await startHub(true);
    const total = await outputBytes(base);
    const first = await pushCounted(hub, base, 'me/test-size');
    assert.equal(first.transfer, 'xet');
    assert.ok(first.bytesSent > 0.9 * total, `a first push sends about everything: ${first.bytesSent} of ${total}`);
    await assertRepoHolds(hub, 'me/test-size', base);
    const again = await reconverted('test-size');
    const second = await pushCounted(hub, again, 'me/test-size');
    describeReport(t, 'first push', first, total);
    describeReport(t, 're-push after --test-size 0.02', second, await outputBytes(again));
    assert.ok(second.uploaded.length >= 4, `most shards changed: ${second.uploaded.join(', ')}`);
    assert.ok(second.bytesSent <= 0.1 * (await outputBytes(again)), `sent ${second.bytesSent} of ${await outputBytes(again)}`);
    assert.equal(second.bytesDeduplicated + second.bytesSent > 0.9 * second.bytesInFiles, true);
    await assertRepoHolds(hub, 'me/test-size', again);
  });

  it('sends at most 10% of the output again after one source row is deleted', async (t) => {
    const hub = await startHub(true);
    await pushCounted(hub, base, 'me/row-deleted');
    const again = await reconverted('row-deleted');
    const second = await pushCounted(hub, again, 'me/row-deleted');
    describeReport(t, 're-push after a source row deleted', second, await outputBytes(again));
    assert.ok(second.uploaded.length >= 1, 'the shard that held the row changed');
    assert.ok(second.bytesSent <= 0.1 * (await outputBytes(again)), `sent ${second.bytesSent} of ${await outputBytes(again)}`);
    // Of the changed shards themselves, too, only a little goes up again: the deduplication is not the skipping of equal files.
    assert.ok(second.bytesSent <= 0.1 * second.bytesInFiles, `sent ${second.bytesSent} of the changed files' ${second.bytesInFiles}`);
    await assertRepoHolds(hub, 'me/row-deleted', again);
  });

  it('sends nothing and commits nothing when pushed again unchanged', async () => {
    const hub = await startHub(true);
    await pushCounted(hub, base, 'me/same');
    const commits = hub.commits('me/same').length;
    const report = await pushCounted(hub, base, 'me/same');
    assert.deepEqual(report.uploaded, []);
    assert.equal(report.bytesSent, 0);
    assert.equal(report.transfer, null);
    assert.equal(hub.commits('me/same').length, commits);
  });

  it('survives a refused write token, 500s and a dropped xorb upload, a 503 on a shard and a failing dedup query', async () => {
    const hub = await startHub(true);
    const waits: number[] = [];
    const config = await settings(hub);
    config.retry = { baseDelayMs: 1, sleep: async (ms) => void waits.push(ms) };
    // The library keeps a write token for its lifetime (an hour here): only the first push of this process asks.
    hub.fail({ match: /^GET \/api\/datasets\/me\/faults\/xet-write-token\//, kind: 'status', status: 429, retryAfter: 3 });
    await push({ dir: base, repoId: 'me/faults', settings: config });
    hub.fail({ match: /^POST \/cas\/v1\/xorbs\//, kind: 'status', status: 500 });
    hub.fail({ match: /^POST \/cas\/v1\/xorbs\//, kind: 'drop-upload', afterBytes: 10_000 });
    hub.fail({ match: /^POST \/cas\/v1\/shards$/, kind: 'status', status: 503 });
    hub.fail({ match: /^GET \/cas\/v1\/chunks\//, kind: 'status', status: 502 });
    const again = await reconverted('test-size');
    const report = await push({ dir: again, repoId: 'me/faults', settings: config });
    assert.equal(hub.pendingFaults, 0);
    assert.ok(waits.includes(3000), `Retry-After honoured: ${waits.join(', ')}`);
    assert.ok(report.bytesSent <= 0.1 * (await outputBytes(again)), `still deduplicated: ${report.bytesSent}`);
    await assertRepoHolds(hub, 'me/faults', again);
  });

  it('pushes a changed file whole, and right, when the read of its earlier version loses its connection', async () => {
    const hub = await startHub(true);
    await pushCounted(hub, base, 'me/head-dropped');
    const again = await reconverted('row-deleted');
    const mark = hub.requests.length;
    hub.fail({ match: /^GET \/datasets\/me\/head-dropped\/resolve\//, ranged: true, kind: 'drop-download', afterBytes: 1000, times: 100 });
    const report = await pushCounted(hub, again, 'me/head-dropped');
    hub.clearFaults();
    assert.ok(headReads(hub, 'me/head-dropped', mark).length >= report.uploaded.length, 'each changed file had its earlier version read');
    assert.equal(report.transfer, 'xet');
    // Only the deduplication against the earlier version is lost: the changed file goes up nearly whole (0.5% of it with the read).
    assert.ok(report.bytesSent > 0.5 * report.bytesInFiles, `sent ${report.bytesSent} of the changed files' ${report.bytesInFiles}`);
    await assertRepoHolds(hub, 'me/head-dropped', again);
  });

  it('gives up the read of an earlier version answered 503 after one retry, and pushes the changed file whole', async () => {
    const hub = await startHub(true);
    const config = await settings(hub);
    config.retry = { baseDelayMs: 1, sleep: async () => undefined };
    await push({ dir: base, repoId: 'me/head-503', settings: config });
    const again = await reconverted('row-deleted');
    const mark = hub.requests.length;
    hub.fail({ match: /^GET \/datasets\/me\/head-503\/resolve\//, ranged: true, kind: 'status', status: 503, times: 100 });
    const events: PushEvent[] = [];
    const iterator = pushIter({ dir: again, repoId: 'me/head-503', settings: config });
    let step = await iterator.next();
    for (; step.done !== true; step = await iterator.next()) events.push(step.value);
    const report = step.value;
    hub.clearFaults();
    const reads = headReads(hub, 'me/head-503', mark);
    assert.ok(report.uploaded.length >= 1);
    assert.deepEqual(reads.map((read) => read.status), report.uploaded.flatMap(() => [503, 503]), 'one read and one retry a changed file');
    const said = events.flatMap((event) => (event.type === 'push-phase' && event.message.startsWith('Could not read') ? [event.message] : []));
    assert.equal(said.length, report.uploaded.length, 'the push says which files go up whole');
    assert.match(said[0] ?? '', /\(503 .*\): its new version goes up whole/);
    assert.ok(report.bytesSent > 0.5 * report.bytesInFiles, `sent ${report.bytesSent} of the changed files' ${report.bytesInFiles}`);
    await assertRepoHolds(hub, 'me/head-503', again);
  });

  it('pushes each file right over earlier versions of 128 KiB or less, from 1 byte up', async () => {
    const hub = await startHub(true);
    const earlier = await shortened(base, [1, 4096, 65_536, 131_071, 100, 131_072, 70_000]);
    const report = await assertRepushHolds(hub, 'me/short', earlier, base);
    assert.equal(report.uploaded.length, (await dataFiles(base)).length);
    assert.equal(report.transfer, 'xet');
  });

  it('pushes each file right over empty earlier versions', async () => {
    const hub = await startHub(true);
    const report = await assertRepushHolds(hub, 'me/empty', await shortened(base, [0]), base);
    assert.equal(report.uploaded.length, (await dataFiles(base)).length);
  });

  it('pushes each file right through LFS, edits of earlier versions included, after the Hub stops offering Xet', async () => {
    const hub = await startHub(true);
    await push({ dir: base, repoId: 'me/xet-gone', settings: await settings(hub) });
    assert.ok([...hub.head('me/xet-gone').values()].some((file) => file.xetHash !== undefined), 'the earlier versions are stored with Xet');
    hub.xet = false;
    const again = await reconverted('test-size');
    const mark = hub.requests.length;
    const report = await push({ dir: again, repoId: 'me/xet-gone', settings: await settings(hub) });
    assert.equal(report.transfer, 'lfs');
    assert.equal(headReads(hub, 'me/xet-gone', mark).length, report.uploaded.length, 'each changed file went up as an edit');
    assert.equal(report.bytesSent, report.bytesInFiles);
    await assertRepoHolds(hub, 'me/xet-gone', again);
  });

  it('killed midway through Xet uploads, then run again, completes without registering any file twice', async () => {
    const hub = await startHub(true);
    const env = { HF_ENDPOINT: hub.url, HF_TOKEN: TEST_TOKEN, HF_HOME: await tempDir() };
    // The first shard goes up; the others hang until the push is killed, so it stops after the files of one shard.
    const first = await pushKilledAfterFirstUpload(hub, /^POST \/cas\/v1\/shards$/, ['push', base, '--repo-id', 'me/killed'], env);
    assert.equal(first.code, null, 'killed by the signal');
    assert.ok(!hub.head('me/killed').has('README.md'), 'no card after an interrupted push');
    const registered = [...hub.uploads.keys()];
    assert.ok(registered.length >= 1 && registered.length < (await dataFiles(base)).length, `stopped part way: ${registered.length} file(s) stored`);
    const second = await runCli(['push', base, '--repo-id', 'me/killed', '--json'], { env });
    assert.equal(second.code, 0, second.stderr);
    await assertRepoHolds(hub, 'me/killed', base);
    for (const [key, count] of hub.uploads) assert.equal(count, 1, `${key} stored ${count} times`);
    const report = JSON.parse(second.stdout) as PushReport;
    assert.equal(report.transfer, 'xet');
    // The deprecated name of bytesInFiles stays in the --json report, for its readers before Xet.
    assert.ok(report.bytesInFiles > 0);
    assert.equal(report.bytesUploaded, report.bytesInFiles);
    assert.match(second.stderr, /in files: .* sent \(Xet\), .* deduplicated/);
    // Neither the Hub token nor a Xet token the Hub handed out (one a process) shows in what either run printed.
    const printed = first.stdout + first.stderr + second.stdout + second.stderr;
    assert.ok(hub.casTokens.length >= 2, `a Xet token for each run: ${hub.casTokens.length}`);
    for (const token of [TEST_TOKEN, ...hub.casTokens]) assert.ok(!printed.includes(token), `${token.slice(0, 8)}… printed`);
  });

  it('falls back to whole LFS objects where the Hub offers no Xet, sending every changed shard whole', async (t) => {
    const hub = await startHub(false);
    await push({ dir: base, repoId: 'me/no-xet', settings: await settings(hub) });
    const again = await reconverted('test-size');
    const report = await push({ dir: again, repoId: 'me/no-xet', settings: await settings(hub) });
    describeReport(t, 're-push after --test-size 0.02 without Xet', report, await outputBytes(again));
    assert.equal(report.transfer, 'lfs');
    assert.equal(hub.xetStore.traffic.xorbs, 0);
    assert.equal(report.bytesSent, report.bytesInFiles);
    assert.equal(report.bytesDeduplicated, 0);
    await assertRepoHolds(hub, 'me/no-xet', again);
  });
});
