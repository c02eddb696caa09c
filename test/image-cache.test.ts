import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ImageCache, imageKey } from '../workers/image-cache.js';

describe('ImageCache', () => {
  it('returns a kept image as the bytes it is asked about, without storing them', () => {
    const cache = new ImageCache(`test-${Math.random()}`);
    const bytes = new Uint8Array([1, 2, 3]);
    const key = imageKey(bytes);
    assert.equal(cache.get(key, bytes), undefined);
    cache.set(key, { ok: true, bytes, reencoded: false });
    const again = new Uint8Array([1, 2, 3]);
    assert.deepEqual(cache.get(key, again), { ok: true, bytes: again, reencoded: false });
  });

  it('keeps re-encoded bytes and rejects', () => {
    const cache = new ImageCache(`test-${Math.random()}`);
    const out = new Uint8Array([9, 9]);
    cache.set('a', { ok: true, bytes: out, reencoded: true });
    cache.set('b', { ok: false, code: 'corrupt_image', message: 'bad' });
    assert.deepEqual(cache.get('a', new Uint8Array(1)), { ok: true, bytes: out, reencoded: true });
    assert.deepEqual(cache.get('b', new Uint8Array(1)), { ok: false, code: 'corrupt_image', message: 'bad' });
  });

  it('drops the oldest re-encoded bytes past its limit', () => {
    const cache = new ImageCache(`test-${Math.random()}`, 10);
    cache.set('old', { ok: true, bytes: new Uint8Array(6), reencoded: true });
    cache.set('new', { ok: true, bytes: new Uint8Array(6), reencoded: true });
    assert.equal(cache.get('old', new Uint8Array(0)), undefined);
    assert.ok(cache.get('new', new Uint8Array(0)));
  });

  it('shares what one cache learns with another on the same channel', async () => {
    const name = `test-${Math.random()}`;
    const [a, b] = [new ImageCache(name), new ImageCache(name)];
    const bytes = new Uint8Array([4, 5, 6]);
    a.set(imageKey(bytes), { ok: true, bytes, reencoded: false });
    await delay(50);
    assert.deepEqual(b.get(imageKey(bytes), bytes), { ok: true, bytes, reencoded: false });
  });
});
