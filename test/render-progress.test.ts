import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, ProgressRenderer } from '../src/render-progress.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let written = '';
  const stream = { isTTY, write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => written };
}

describe('ProgressRenderer', () => {
  it('draws rows done, rows/s and ETA on a terminal', () => {
    let now = 0;
    const { stream, text } = fakeStream(true);
    const renderer = new ProgressRenderer({ stream, now: () => now });
    renderer.render({ type: 'planned', files: 2, rows: 1000, trainRows: 990, testRows: 10, workers: 2 });
    renderer.render({ type: 'progress', stage: 'convert', done: 0, total: 1000 });
    now = 2000;
    renderer.render({ type: 'progress', stage: 'convert', done: 400, total: 1000 });
    assert.match(text(), /Converting 1,000 rows from 2 file\(s\) with 2 worker\(s\): 990 train, 10 test/);
    assert.match(text(), /convert\s+40%\s+400\/1,000 rows\s+200 rows\/s\s+ETA 3s/);
  });

  it('writes plain lines, no control codes, when the stream is not a terminal', () => {
    const { stream, text } = fakeStream(false);
    const renderer = new ProgressRenderer({ stream });
    renderer.render({ type: 'progress', stage: 'convert', done: 10, total: 100 });
    renderer.render({ type: 'progress', stage: 'write', done: 10, total: 100 });
    assert.equal(text(), 'Converting...\nWriting shards...\n');
  });
});

describe('formatDuration', () => {
  it('reads as seconds, minutes and hours', () => {
    assert.equal(formatDuration(41), '41s');
    assert.equal(formatDuration(125), '2m05s');
    assert.equal(formatDuration(7300), '2h01m');
    assert.equal(formatDuration(Number.POSITIVE_INFINITY), '--');
  });
});

describe('ProgressRenderer with the Hub', () => {
  const progress = (bytes: number, filesDone: number) => ({ files: 4, filesDone, bytes, totalBytes: 4_000_000, fetched: bytes - 1_000_000, current: 'a.parquet' });

  it('draws download bytes, rate and ETA while waiting for a file, and tells every retry on its own line', () => {
    let now = 0;
    const { stream, text } = fakeStream(true);
    const renderer = new ProgressRenderer({ stream, now: () => now });
    renderer.render({ type: 'source', repo: 'o/d', revision: 'main', commit: 'abcdef0123456789', files: 4, cachedFiles: 1, bytes: 4_000_000, cachedBytes: 1_000_000 });
    renderer.render({ type: 'download', progress: progress(1_000_000, 1) });
    now = 2000;
    renderer.render({ type: 'download', progress: progress(2_000_000, 1) });
    renderer.render({ type: 'retry', retry: { attempt: 1, delayMs: 4000, status: 503, request: 'GET http://hub/x', reason: '503 Service Unavailable' } });
    assert.match(text(), /Source: o\/d at main \(commit abcdef012345\), 4 parquet file\(s\), 3\.8 MiB; 1 already in the cache/);
    // 1 MB fetched in 2 s: 2 MB left at 0.5 MB/s.
    assert.match(text(), /download\s+50%\s+1\.9 MiB\/3\.8 MiB\s+file 2\/4\s+488\.3 KiB\/s\s+ETA 4s/);
    assert.match(text(), /Hub: GET http:\/\/hub\/x answered 503 Service Unavailable; trying again in 4s \(attempt 2\)\n/);
  });

  it('writes a line per downloaded file when the stream is not a terminal', () => {
    const { stream, text } = fakeStream(false);
    const renderer = new ProgressRenderer({ stream });
    renderer.render({ type: 'download', progress: progress(1_000_000, 1) });
    renderer.render({ type: 'download', progress: progress(1_500_000, 1) });
    renderer.render({ type: 'download', progress: progress(2_000_000, 2) });
    assert.equal(text(), 'Downloaded 1/4 file(s), 976.6 KiB of 3.8 MiB\nDownloaded 2/4 file(s), 1.9 MiB of 3.8 MiB\n');
  });
});
