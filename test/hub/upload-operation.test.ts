import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { RepoFile } from '../../src/hub/plan-push.js';
import { counterpartPath, uploadOperation } from '../../src/hub/upload-operation.js';
import { tempDir } from '../support/fixtures.js';

function repo(entries: [string, boolean][]): Map<string, RepoFile> {
  return new Map(entries.map(([name, xet]) => [name, { oid: 'o', lfs: 'l', size: 1, ...(xet ? { xet: `x-${name}` } : {}) }]));
}

describe('counterpartPath', () => {
  it('takes the file at the same path when the repo stores it with Xet', () => {
    const remote = repo([['data/train-00001-of-00004.parquet', true], ['data/train-00002-of-00004.parquet', true]]);
    assert.equal(counterpartPath('data/train-00001-of-00004.parquet', remote), 'data/train-00001-of-00004.parquet');
  });

  it('takes the shard of the same split at the same relative position when the count of shards changed', () => {
    const remote = repo([
      ['data/train-00000-of-00004.parquet', true],
      ['data/train-00001-of-00004.parquet', true],
      ['data/train-00002-of-00004.parquet', true],
      ['data/train-00003-of-00004.parquet', true],
      ['data/test-00000-of-00001.parquet', true],
    ]);
    assert.equal(counterpartPath('data/train-00000-of-00008.parquet', remote), 'data/train-00000-of-00004.parquet');
    assert.equal(counterpartPath('data/train-00005-of-00008.parquet', remote), 'data/train-00002-of-00004.parquet');
    assert.equal(counterpartPath('data/train-00007-of-00008.parquet', remote), 'data/train-00003-of-00004.parquet');
    assert.equal(counterpartPath('data/test-00001-of-00002.parquet', remote), 'data/test-00000-of-00001.parquet');
  });

  it('takes none where the repo stores the split without Xet, or not at all', () => {
    const remote = repo([['data/train-00000-of-00001.parquet', false], ['data/test-00000-of-00001.parquet', true]]);
    assert.equal(counterpartPath('data/train-00000-of-00001.parquet', remote), undefined);
    assert.equal(counterpartPath('data/validation-00000-of-00001.parquet', remote), undefined);
    assert.equal(counterpartPath('README.md', remote), undefined);
  });
});

describe('uploadOperation', () => {
  it('is an edit of the earlier version replaced whole, whose content is the new file byte for byte', async () => {
    const file = path.join(await tempDir(), 'train.parquet');
    const content = Buffer.alloc(300_000, 7);
    await writeFile(file, content);
    const earlier = Buffer.alloc(200_000, 3);
    const requests: { url: string; range: string | null }[] = [];
    const fetch = (async (url: string, init?: RequestInit) => {
      const range = new Headers(init?.headers).get('range');
      requests.push({ url, range });
      return new Response(earlier.subarray(0, 128 * 1024), { status: 206 });
    }) as typeof globalThis.fetch;
    const name = 'data/train-00000-of-00001.parquet';
    const operation = await uploadOperation({ path: name, file }, repo([[name, true]]), { repoId: 'me/x', hubUrl: 'http://hub', accessToken: 't', fetch });
    assert.deepEqual(requests, [{ url: `http://hub/datasets/me/x/resolve/main/${name}`, range: 'bytes=0-131071' }]);
    assert.equal(operation.operation, 'edit');
    if (operation.operation !== 'edit') return;
    assert.equal(operation.originalContent.size, 128 * 1024);
    assert.deepEqual(operation.edits.map((edit) => [edit.start, edit.end, edit.content.size]), [[0, 128 * 1024, content.length]]);
  });

  it('is a plain upload, saying why, when the read of the earlier version breaks off, fails, gives nothing or takes too long', async () => {
    const file = path.join(await tempDir(), 'train.parquet');
    await writeFile(file, 'x');
    const name = 'data/train-00000-of-00001.parquet';
    const broken = new ReadableStream<Uint8Array>({
      start: (controller) => {
        controller.enqueue(new Uint8Array(1000));
        controller.error(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
      },
    });
    const answers: Record<string, (init?: RequestInit) => Promise<Response>> = {
      'dropped midway': async () => new Response(broken, { status: 206 }),
      'refused': async () => Promise.reject(new TypeError('fetch failed: connect ECONNREFUSED')),
      'empty': async () => new Response(new Uint8Array(0), { status: 200 }),
      'empty, 416': async () => new Response(null, { status: 416 }),
      // A socket would keep the process alive meanwhile (the timeout's timer does not): a timer stands in for it.
      'hanging': (init) =>
        new Promise((_, reject) => {
          const socket = setTimeout(() => undefined, 10_000);
          init?.signal?.addEventListener('abort', () => {
            clearTimeout(socket);
            reject(init.signal?.reason);
          });
        }),
    };
    for (const [what, answer] of Object.entries(answers)) {
      const failures: string[] = [];
      const fetch = ((_url: string, init?: RequestInit) => answer(init)) as typeof globalThis.fetch;
      const access = { repoId: 'me/x', hubUrl: 'http://hub', accessToken: 't', fetch, headTimeoutMs: 50, retry: { sleep: async () => undefined } };
      const started = Date.now();
      const operation = await uploadOperation({ path: name, file }, repo([[name, true]]), { ...access, onHeadFailure: (at, reason) => failures.push(`${at}: ${reason}`) });
      assert.equal(operation.operation, 'addOrUpdate', what);
      assert.ok(Date.now() - started < 5000, `${what}: given up in time`);
      // An empty earlier version is no failure: there is nothing to learn from it.
      assert.equal(failures.length, what.startsWith('empty') ? 0 : 1, `${what}: ${failures.join('; ')}`);
    }
  });

  it('retries a failed read of the earlier version once, not with the push\'s retries', async () => {
    const file = path.join(await tempDir(), 'train.parquet');
    await writeFile(file, 'x');
    let calls = 0;
    const fetch = (async () => {
      calls++;
      return new Response('busy', { status: 503 });
    }) as unknown as typeof globalThis.fetch;
    const name = 'data/train-00000-of-00001.parquet';
    const retry = { retries: 6, sleep: async () => undefined };
    const operation = await uploadOperation({ path: name, file }, repo([[name, true]]), { repoId: 'me/x', hubUrl: 'http://hub', accessToken: 't', fetch, retry });
    assert.equal(operation.operation, 'addOrUpdate');
    assert.equal(calls, 2);
  });

  it('rejects with the push\'s abort while it reads the earlier version, and stops the read', async () => {
    const file = path.join(await tempDir(), 'train.parquet');
    await writeFile(file, 'x');
    const push = new AbortController();
    let stopped = false;
    const fetch = ((_url: string, init?: RequestInit) =>
      new Promise((_, reject) => {
        init?.signal?.addEventListener('abort', () => {
          stopped = true;
          reject(init.signal?.reason);
        });
        push.abort(new DOMException('stopped', 'AbortError'));
      })) as typeof globalThis.fetch;
    const name = 'data/train-00000-of-00001.parquet';
    const access = { repoId: 'me/x', hubUrl: 'http://hub', accessToken: 't', fetch, signal: push.signal };
    await assert.rejects(uploadOperation({ path: name, file }, repo([[name, true]]), access), { name: 'AbortError', message: 'stopped' });
    assert.ok(stopped);
  });

  it('is a plain upload when the Hub does not give the earlier version', async () => {
    const file = path.join(await tempDir(), 'train.parquet');
    await writeFile(file, 'x');
    const fetch = (async () => new Response('gone', { status: 404 })) as unknown as typeof globalThis.fetch;
    const name = 'data/train-00000-of-00001.parquet';
    const operation = await uploadOperation({ path: name, file }, repo([[name, true]]), { repoId: 'me/x', hubUrl: 'http://hub', accessToken: 't', fetch });
    assert.equal(operation.operation, 'addOrUpdate');
  });
});
