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

  it('is a plain upload when the Hub does not give the earlier version', async () => {
    const file = path.join(await tempDir(), 'train.parquet');
    await writeFile(file, 'x');
    const fetch = (async () => new Response('gone', { status: 404 })) as unknown as typeof globalThis.fetch;
    const name = 'data/train-00000-of-00001.parquet';
    const operation = await uploadOperation({ path: name, file }, repo([[name, true]]), { repoId: 'me/x', hubUrl: 'http://hub', accessToken: 't', fetch });
    assert.equal(operation.operation, 'addOrUpdate');
  });
});
