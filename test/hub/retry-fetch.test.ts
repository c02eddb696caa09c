import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryAfterMs, retryFetch, type RetryEvent } from '../../src/hub/retry-fetch.js';

/** A fetch that answers from a script: a status (with headers) or a thrown network error per call. */
function scripted(steps: (number | [number, Record<string, string>] | Error)[]): { fetch: typeof fetch; calls: () => number } {
  let calls = 0;
  const fetch: typeof globalThis.fetch = (async () => {
    const step = steps[Math.min(calls++, steps.length - 1)];
    if (step instanceof Error) throw step;
    const [status, headers] = Array.isArray(step) ? step : [step ?? 200, {}];
    return new Response(status === 204 ? null : `body ${status}`, { status, headers });
  }) as typeof fetch;
  return { fetch, calls: () => calls };
}

function recorder(): { sleep: (ms: number) => Promise<void>; delays: number[]; events: RetryEvent[]; onRetry: (event: RetryEvent) => void } {
  const delays: number[] = [];
  const events: RetryEvent[] = [];
  return { sleep: async (ms) => void delays.push(ms), delays, events, onRetry: (event) => events.push(event) };
}

describe('retryFetch', () => {
  it('tries 500, 502 and 429 again until the answer is good', async () => {
    const { fetch, calls } = scripted([500, 502, 429, 200]);
    const record = recorder();
    const response = await retryFetch(fetch, { sleep: record.sleep, onRetry: record.onRetry })('http://hub/api/x');
    assert.equal(response.status, 200);
    assert.equal(calls(), 4);
    assert.deepEqual(record.events.map((event) => event.status), [500, 502, 429]);
    assert.equal(record.events[0]?.request, 'GET http://hub/api/x');
  });

  it('waits as long as Retry-After says, and backs off exponentially otherwise', async () => {
    const { fetch } = scripted([[429, { 'retry-after': '7' }], 503, 503, 200]);
    const record = recorder();
    await retryFetch(fetch, { sleep: record.sleep, baseDelayMs: 100 })('http://hub/x');
    assert.equal(record.delays[0], 7000);
    // Attempt n waits base × 2^(n-1), plus up to 50% jitter.
    assert.ok((record.delays[1] ?? 0) >= 200 && (record.delays[1] ?? 0) <= 300, String(record.delays[1]));
    assert.ok((record.delays[2] ?? 0) >= 400 && (record.delays[2] ?? 0) <= 600, String(record.delays[2]));
  });

  it('caps the wait at maxDelayMs', async () => {
    const { fetch } = scripted([[429, { 'retry-after': '3600' }], 200]);
    const record = recorder();
    await retryFetch(fetch, { sleep: record.sleep, maxDelayMs: 5000 })('http://hub/x');
    assert.deepEqual(record.delays, [5000]);
  });

  it('retries a dropped connection but not an abort', async () => {
    const dropped = scripted([new TypeError('fetch failed: socket hang up'), 200]);
    const record = recorder();
    assert.equal((await retryFetch(dropped.fetch, { sleep: record.sleep })('http://hub/x')).status, 200);
    assert.equal(dropped.calls(), 2);
    const abort = new DOMException('aborted', 'AbortError');
    const aborted = scripted([abort, 200]);
    await assert.rejects(retryFetch(aborted.fetch, { sleep: record.sleep })('http://hub/x'), (error: unknown) => error === abort);
    assert.equal(aborted.calls(), 1);
  });

  it('does not retry a host name that does not resolve', async () => {
    const cause = Object.assign(new Error('getaddrinfo ENOTFOUND hub.invalid'), { code: 'ENOTFOUND' });
    const unresolved = scripted([new TypeError('fetch failed: getaddrinfo ENOTFOUND hub.invalid', { cause }), 200]);
    const record = recorder();
    await assert.rejects(retryFetch(unresolved.fetch, { sleep: record.sleep })('http://hub.invalid/x'), /ENOTFOUND/);
    assert.equal(unresolved.calls(), 1);
    assert.deepEqual(record.delays, []);
  });

  it('returns 4xx answers at once, and the last failure when retries run out', async () => {
    const notFound = scripted([404, 200]);
    assert.equal((await retryFetch(notFound.fetch)('http://hub/x')).status, 404);
    assert.equal(notFound.calls(), 1);
    const down = scripted([503]);
    const record = recorder();
    assert.equal((await retryFetch(down.fetch, { sleep: record.sleep, retries: 2 })('http://hub/x')).status, 503);
    assert.equal(down.calls(), 3);
  });

  it('does not send a stream body twice', async () => {
    const { fetch, calls } = scripted([500, 200]);
    const body = new ReadableStream({ start: (controller) => controller.close() });
    const response = await retryFetch(fetch, { sleep: async () => undefined })('http://hub/x', { method: 'POST', body, duplex: 'half' } as RequestInit);
    assert.equal(response.status, 500);
    assert.equal(calls(), 1);
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates', () => {
    assert.equal(retryAfterMs('12'), 12_000);
    assert.equal(retryAfterMs(new Date(61_000).toUTCString(), 1000), 60_000);
    assert.equal(retryAfterMs(null), null);
    assert.equal(retryAfterMs('soon'), null);
  });
});
