import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DatasetDownloads } from '../src/hub/background-downloads.js';
import { downloadToCache } from '../src/hub/download-to-cache.js';
import { resolveDataset } from '../src/hub/resolve-dataset.js';
import { HubError } from '../src/errors.js';
import { hubSettings, type HubSettings } from '../src/hub/hub-settings.js';
import { sampleDir, tempDir } from './fixtures.js';
import { LocalHub } from './hub-server.js';

const REPO = 'openbmb/RLAIF-V-Dataset';
const FILES = ['RLAIF-V-Dataset_000.parquet', 'RLAIF-V-Dataset_001.parquet'];

let hub: LocalHub;
let source: string;

before(async () => {
  hub = await LocalHub.start();
  source = await sampleDir(60, { files: 2 });
  await hub.createDataset(REPO, [
    ...FILES.map((name) => ({ path: name, file: path.join(source, name) })),
    { path: 'README.md', file: path.join(source, FILES[0] ?? '') },
  ]);
});
after(() => hub.close());

async function settings(): Promise<HubSettings> {
  return hubSettings({ env: { HF_HOME: await tempDir('rlaif-v-hf-home-'), HF_ENDPOINT: hub.url }, retry: { baseDelayMs: 1 } });
}

function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

describe('resolveDataset', () => {
  it('lists the parquet files at the commit the revision names, with their sha256, in path order', async () => {
    const config = await settings();
    const dataset = await resolveDataset({ repo: REPO, settings: config });
    assert.match(dataset.commit, /^[0-9a-f]{40}$/);
    assert.deepEqual(dataset.files.map((file) => file.path), FILES);
    const first = dataset.files[0];
    assert.equal(first?.etag, sha256(await readFile(path.join(source, FILES[0] ?? ''))));
    assert.equal(first?.localPath, path.join(config.cacheDir, 'datasets--openbmb--RLAIF-V-Dataset', 'snapshots', dataset.commit, FILES[0] ?? ''));
    assert.equal(first?.cached, false);
  });

  it('says which of repo and revision does not exist', async () => {
    const config = await settings();
    await assert.rejects(resolveDataset({ repo: 'nobody/nothing', settings: config }), (error: unknown) => {
      assert.ok(error instanceof HubError);
      assert.equal(error.code, 'ERR_HUB_REPO_NOT_FOUND');
      assert.match(error.message, /nobody\/nothing was not found .*--dataset/);
      return true;
    });
    await assert.rejects(resolveDataset({ repo: REPO, revision: 'v9', settings: config }), (error: unknown) => {
      assert.ok(error instanceof HubError);
      assert.equal(error.code, 'ERR_HUB_REVISION_NOT_FOUND');
      assert.match(error.message, /no revision "v9".*--revision/);
      return true;
    });
  });
});

describe('DatasetDownloads', () => {
  it('downloads into the Hugging Face cache layout, and a second run fetches nothing', async () => {
    const config = await settings();
    const dataset = await resolveDataset({ repo: REPO, settings: config });
    const downloads = new DatasetDownloads(dataset, config);
    await downloads.ready(0);
    await downloads.ready(1);
    for (const file of dataset.files) {
      assert.deepEqual(await readFile(file.localPath), await readFile(path.join(source, file.path)));
      assert.equal(path.resolve(path.dirname(file.localPath), await readlink(file.localPath)), file.blobPath);
    }
    const storage = path.join(config.cacheDir, 'datasets--openbmb--RLAIF-V-Dataset');
    assert.equal(await readFile(path.join(storage, 'refs', 'main'), 'utf8'), dataset.commit);
    assert.equal(downloads.progress.filesDone, 2);
    assert.equal(downloads.progress.bytes, downloads.progress.totalBytes);

    const mark = hub.requests.length;
    const again = await resolveDataset({ repo: REPO, settings: config });
    assert.deepEqual(again.files.map((file) => file.cached), [true, true]);
    const rerun = new DatasetDownloads(again, config);
    await rerun.ready(1);
    assert.deepEqual(hub.bodyDownloads(mark), []);
    assert.equal(rerun.progress.fetched, 0);
  });

  it('reuses files that Python huggingface_hub put in the cache', async () => {
    const config = await settings();
    const dataset = await resolveDataset({ repo: REPO, settings: config });
    // The layout huggingface_hub writes: blobs/<sha256>, snapshots/<commit>/<name> -> ../../blobs/<sha256>. The second
    // file only as a blob (fetched at another commit).
    for (const [index, file] of dataset.files.entries()) {
      await mkdir(path.dirname(file.blobPath), { recursive: true });
      await writeFile(file.blobPath, await readFile(path.join(source, file.path)));
      if (index === 0) {
        await mkdir(path.dirname(file.localPath), { recursive: true });
        await symlink(path.relative(path.dirname(file.localPath), file.blobPath), file.localPath);
      }
    }
    const mark = hub.requests.length;
    const reread = await resolveDataset({ repo: REPO, settings: config });
    assert.deepEqual(reread.files.map((file) => file.cached), [true, true]);
    const downloads = new DatasetDownloads(reread, config);
    await downloads.ready(1);
    assert.deepEqual(hub.bodyDownloads(mark), []);
    assert.deepEqual(await readFile(reread.files[1]?.localPath ?? ''), await readFile(path.join(source, FILES[1] ?? '')));
  });

  it('resumes a partial download left by an earlier run from where it stopped', async () => {
    const config = await settings();
    const dataset = await resolveDataset({ repo: REPO, settings: config });
    const file = dataset.files[0];
    assert.ok(file !== undefined);
    const content = await readFile(path.join(source, file.path));
    const half = Math.floor(content.byteLength / 2);
    await mkdir(path.dirname(file.blobPath), { recursive: true });
    await writeFile(`${file.blobPath}.incomplete`, content.subarray(0, half));
    const mark = hub.requests.length;
    await downloadToCache({ source: dataset, file, settings: config });
    const ranges = hub.requests.slice(mark).filter((request) => request.path.includes('/resolve/')).map((request) => request.range);
    assert.deepEqual(ranges, [`bytes=${half}-`]);
    assert.deepEqual(await readFile(file.localPath), content);
  });

  it('downloads a blob once when runs sharing the cache want it at the same time, and takes over a dead run\'s lock', async () => {
    const config = await settings();
    const dataset = await resolveDataset({ repo: REPO, settings: config });
    const [first, second] = dataset.files;
    assert.ok(first !== undefined && second !== undefined);
    let mark = hub.requests.length;
    const paths = await Promise.all([1, 2, 3].map(() => downloadToCache({ source: dataset, file: first, settings: config })));
    assert.deepEqual(new Set(paths), new Set([first.localPath]));
    assert.equal(hub.bodyDownloads(mark).length, 1, 'one download for three runs');
    assert.deepEqual(await readFile(first.localPath), await readFile(path.join(source, first.path)));
    // A lock left by a process that is gone (killed mid-download) does not hold the next run up.
    const locks = path.join(config.cacheDir, '.locks', 'datasets--openbmb--RLAIF-V-Dataset');
    assert.deepEqual(await readdir(locks), [], 'the locks are released');
    const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid ?? 0;
    await writeFile(path.join(locks, `${path.basename(second.blobPath)}.rlaif-v.lock`), JSON.stringify({ host: hostname(), pid: dead }));
    mark = hub.requests.length;
    await downloadToCache({ source: dataset, file: second, settings: config });
    assert.equal(hub.bodyDownloads(mark).length, 1);
    assert.deepEqual(await readdir(locks), []);
  });

  it('survives 500s, a 429 with Retry-After, connections dropped mid-download and a body that ends early', async () => {
    const config = await settings();
    const retries: number[] = [];
    config.retry = { baseDelayMs: 1, sleep: async (ms) => void retries.push(ms) };
    const dataset = await resolveDataset({ repo: REPO, settings: config });
    hub.fail({ match: /^GET \/datasets\/.*\/resolve\//, kind: 'status', status: 500 });
    hub.fail({ match: /^GET \/datasets\/.*\/resolve\//, kind: 'status', status: 429, retryAfter: 3 });
    hub.fail({ match: /^GET \/datasets\/.*\/resolve\//, kind: 'drop-download', afterBytes: 20_000, times: 2 });
    hub.fail({ match: /^GET \/datasets\/.*\/resolve\//, kind: 'end-early', afterBytes: 10_000, ranged: true });
    const mark = hub.requests.length;
    const downloads = new DatasetDownloads(dataset, config);
    await downloads.ready(0);
    await downloads.ready(1);
    assert.equal(hub.pendingFaults, 0);
    // Every break-off resumed with a Range request: each file's body was started from byte 0 once.
    const fromStart = hub.requests.slice(mark).filter((request) => request.path.includes('/resolve/') && request.range === undefined && request.status === 200);
    assert.equal(fromStart.length, 2);
    assert.ok(retries.includes(3000), `Retry-After honoured: ${retries.join(', ')}`);
    for (const file of dataset.files) assert.deepEqual(await readFile(file.localPath), await readFile(path.join(source, file.path)));
  });

  it('refuses bytes that do not match the etag, and leaves nothing in the cache', async () => {
    const corrupt = await LocalHub.start();
    after(() => corrupt.close());
    const name = FILES[0] ?? '';
    await corrupt.createDataset(REPO, [{ path: name, file: path.join(source, name) }]);
    const stored = corrupt.head(REPO).get(name);
    assert.ok(stored !== undefined);
    const bytes = await readFile(stored.blobPath);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await writeFile(stored.blobPath, bytes);
    const config = await hubSettings({ env: { HF_HOME: await tempDir(), HF_ENDPOINT: corrupt.url }, retry: { baseDelayMs: 1 } });
    const dataset = await resolveDataset({ repo: REPO, settings: config });
    const file = dataset.files[0];
    assert.ok(file !== undefined);
    await assert.rejects(downloadToCache({ source: dataset, file, settings: config }), (error: unknown) => error instanceof HubError && error.code === 'ERR_HUB_DOWNLOAD' && /do not match/.test(error.message));
    await assert.rejects(readFile(file.blobPath), { code: 'ENOENT' });
    await assert.rejects(readFile(`${file.blobPath}.incomplete`), { code: 'ENOENT' });
  });

  it('with HF_HUB_OFFLINE, reads the dataset from the cache and never calls the Hub', async () => {
    const home = await tempDir('rlaif-v-hf-home-');
    const online = await hubSettings({ env: { HF_HOME: home, HF_ENDPOINT: hub.url }, retry: { baseDelayMs: 1 } });
    const dataset = await resolveDataset({ repo: REPO, settings: online });
    await new DatasetDownloads(dataset, online).ready(1);
    const mark = hub.requests.length;
    const offline = await hubSettings({ env: { HF_HOME: home, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '1' } });
    const cached = await resolveDataset({ repo: REPO, settings: offline });
    assert.deepEqual(cached, { ...dataset, files: dataset.files.map((file) => ({ ...file, cached: true })) });
    await new DatasetDownloads(cached, offline).ready(1);
    assert.equal(hub.requests.length, mark, 'no request');
    await assert.rejects(resolveDataset({ repo: 'someone/elsewhere', settings: offline }), (error: unknown) => error instanceof HubError && error.code === 'ERR_HUB_OFFLINE_MISSING' && /Unset HF_HUB_OFFLINE/.test(error.message));
  });

  it('mends a cache whose snapshot link or blob went missing, and offline says which file lacks its content', async () => {
    const home = await tempDir('rlaif-v-hf-home-');
    const online = await hubSettings({ env: { HF_HOME: home, HF_ENDPOINT: hub.url }, retry: { baseDelayMs: 1 } });
    const dataset = await resolveDataset({ repo: REPO, settings: online });
    await new DatasetDownloads(dataset, online).ready(1);
    const [first, second] = dataset.files;
    assert.ok(first !== undefined && second !== undefined);
    // The first file's snapshot link is gone (its blob is there); the second's blob is gone (its link dangles).
    await rm(first.localPath);
    await rm(second.blobPath);
    const mark = hub.requests.length;
    const again = await resolveDataset({ repo: REPO, settings: online });
    assert.deepEqual(again.files.map((file) => file.cached), [true, false]);
    await new DatasetDownloads(again, online).ready(1);
    for (const file of again.files) assert.deepEqual(await readFile(file.localPath), await readFile(path.join(source, file.path)));
    assert.deepEqual(hub.bodyDownloads(mark).length, 1, 'only the missing blob is downloaded again');

    await rm(second.blobPath);
    const offline = await hubSettings({ env: { HF_HOME: home, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '1' } });
    await assert.rejects(resolveDataset({ repo: REPO, settings: offline }), (error: unknown) => {
      assert.ok(error instanceof HubError);
      assert.equal(error.code, 'ERR_HUB_CACHE_BROKEN');
      assert.match(error.message, new RegExp(`${second.path.replace('.', '\\.')} at main but not its content .* Unset HF_HUB_OFFLINE`));
      return true;
    });
  });

  it('retries a download that cannot connect in one layer of retries, not one inside another', async () => {
    const config = await settings();
    const source = await resolveDataset({ repo: REPO, settings: config });
    const file = source.files[0];
    assert.ok(file !== undefined);
    const sleeps: number[] = [];
    // The Hub went away after the listing: every connection for the file's bytes is refused.
    const gone: HubSettings = { ...config, cacheDir: path.join(await tempDir(), 'hub'), hubUrl: 'http://127.0.0.1:1', retry: { retries: 2, sleep: async (ms) => void sleeps.push(ms) } };
    const local = { ...file, blobPath: path.join(gone.cacheDir, 'blob'), localPath: path.join(gone.cacheDir, 'snapshot', file.path), cached: false };
    await assert.rejects(downloadToCache({ source, file: local, settings: gone }), (error: unknown) => error instanceof HubError && error.code === 'ERR_HUB_UNREACHABLE');
    assert.equal(sleeps.length, 2);
  });

  it('says the Hub cannot be reached, and how to work offline, after retrying', async () => {
    const retries: number[] = [];
    const unreachable = await hubSettings({ env: { HF_HOME: await tempDir(), HF_ENDPOINT: 'http://127.0.0.1:1' }, retry: { retries: 2, sleep: async (ms) => void retries.push(ms) } });
    await assert.rejects(resolveDataset({ repo: REPO, settings: unreachable }), (error: unknown) => {
      assert.ok(error instanceof HubError);
      assert.equal(error.code, 'ERR_HUB_UNREACHABLE');
      assert.match(error.message, /cannot reach the Hub at http:\/\/127\.0\.0\.1:1 .*HF_HUB_OFFLINE=1/);
      return true;
    });
    assert.equal(retries.length, 2);
  });
});
