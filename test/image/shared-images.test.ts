import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { SharedImages, imageKey, keptTableBuffer } from '../../src/image/shared-images.js';

describe('SharedImages', () => {
  it('returns a kept image as the bytes it is asked about, without storing them', () => {
    const cache = new SharedImages(`test-${Math.random()}`);
    const bytes = new Uint8Array([1, 2, 3]);
    const key = imageKey(bytes);
    assert.equal(cache.get(key, bytes), undefined);
    cache.set(key, { ok: true, bytes, reencoded: false });
    const again = new Uint8Array([1, 2, 3]);
    assert.deepEqual(cache.get(key, again), { ok: true, bytes: again, reencoded: false });
  });

  it('keeps re-encoded bytes and rejects', () => {
    const cache = new SharedImages(`test-${Math.random()}`);
    const out = new Uint8Array([9, 9]);
    cache.set('a', { ok: true, bytes: out, reencoded: true });
    cache.set('b', { ok: false, code: 'corrupt_image', message: 'bad' });
    assert.deepEqual(cache.get('a', new Uint8Array(1)), { ok: true, bytes: out, reencoded: true });
    assert.deepEqual(cache.get('b', new Uint8Array(1)), { ok: false, code: 'corrupt_image', message: 'bad' });
  });

  it('drops the oldest re-encoded bytes past its limit', () => {
    const cache = new SharedImages(`test-${Math.random()}`, 10);
    cache.set('old', { ok: true, bytes: new Uint8Array(6), reencoded: true });
    cache.set('new', { ok: true, bytes: new Uint8Array(6), reencoded: true });
    assert.equal(cache.get('old', new Uint8Array(0)), undefined);
    assert.ok(cache.get('new', new Uint8Array(0)));
  });

  it('shares what one cache learns with another on the same channel', async () => {
    const name = `test-${Math.random()}`;
    const [a, b] = [new SharedImages(name), new SharedImages(name)];
    const bytes = new Uint8Array([4, 5, 6]);
    a.set(imageKey(bytes), { ok: true, bytes, reencoded: false });
    await delay(50);
    assert.deepEqual(b.get(imageKey(bytes), bytes), { ok: true, bytes, reencoded: false });
  });

  it('shares kept images at once through the shared table, and nothing else through it', () => {
    const table = keptTableBuffer(100);
    // Different channels: only the table can carry what one learns to the other.
    const [a, b] = [new SharedImages(`test-${Math.random()}`, undefined, table), new SharedImages(`test-${Math.random()}`, undefined, table)];
    const kept = new Uint8Array([7, 7, 7]);
    const bad = new Uint8Array([8, 8, 8]);
    a.set(imageKey(kept), { ok: true, bytes: kept, reencoded: false });
    a.set(imageKey(bad), { ok: false, code: 'corrupt_image', message: 'bad' });
    assert.deepEqual(b.get(imageKey(kept), kept), { ok: true, bytes: kept, reencoded: false });
    assert.equal(b.get(imageKey(bad), bad), undefined);
    assert.deepEqual(a.get(imageKey(bad), bad), { ok: false, code: 'corrupt_image', message: 'bad' });
  });

  it('tells keys apart that share their first 32 bits, and takes no more once 70% full', () => {
    const table = keptTableBuffer(1); // 1,024 slots
    const cache = new SharedImages(`test-${Math.random()}`, undefined, table);
    const key = (n: number, first = 0x11111111): string => {
      const digest = Buffer.alloc(32);
      digest.writeInt32LE(first, 0);
      digest.writeInt32LE(n, 4);
      digest.writeInt32LE(n * 7, 8);
      return digest.toString('base64');
    };
    const image = { ok: true, bytes: new Uint8Array(1), reencoded: false } as const;
    cache.set(key(1), image);
    assert.equal(cache.get(key(2), new Uint8Array(1)), undefined);
    for (let n = 0; n < 2000; n++) cache.set(key(n, n + 5), image);
    assert.ok((new Int32Array(table)[0] ?? 0) <= 0.7 * 1023 + 1, 'the table stops taking entries');
    const other = new SharedImages(`test-${Math.random()}`, undefined, table);
    assert.ok(other.get(key(1), new Uint8Array(1)), 'an entry made before it filled is still found');
  });
});
