import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration } from '../../src/util/format.js';
import { ProgressRenderer } from '../../src/cli/render-progress.js';

function fakeStream(isTTY: boolean, columns = 120): { stream: NodeJS.WriteStream; text: () => string } {
  let written = '';
  const stream = { isTTY, columns, write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => written };
}

/** What a terminal shows of each redraw: the text between carriage returns and newlines, escape codes taken out. */
function segments(text: string): string[] {
  return text
    .replace(/\x1b\[2K/g, '')
    .split(/[\r\n]/)
    .filter((segment) => segment !== '');
}

describe('ProgressRenderer', () => {
  it('draws rows done, rows/s and ETA on a terminal, the line there from the start', () => {
    let now = 0;
    const { stream, text } = fakeStream(true);
    const renderer = new ProgressRenderer({ stream, now: () => now, ticking: false });
    renderer.render({ type: 'planned', files: 2, rows: 1000, trainRows: 990, testRows: 10, workers: 2 });
    assert.match(text(), /Converting 1,000 rows from 2 file\(s\) with 2 worker\(s\): 990 train, 10 test\n\r\x1b\[2Kconvert\s+0%\s+0\/1,000 rows\s+-- rows\/s\s+0s\s+ETA --/);
    // The pace is taken from when rows began to come, not from the start (workers starting up are not the pace).
    now = 3000;
    renderer.render({ type: 'progress', stage: 'convert', done: 200, total: 1000 });
    now = 5000;
    renderer.render({ type: 'progress', stage: 'convert', done: 600, total: 1000 });
    assert.match(text(), /convert\s+60%\s+600\/1,000 rows\s+200 rows\/s\s+5s\s+ETA 2s/);
  });

  it('takes the ETA from the input bytes done where the events carry them: rows differ in size', () => {
    let now = 0;
    const { stream, text } = fakeStream(true);
    const renderer = new ProgressRenderer({ stream, now: () => now, ticking: false });
    renderer.render({ type: 'progress', stage: 'convert', done: 100, total: 1000, bytes: { done: 1000, total: 100_000 } });
    now = 10_000;
    // 500 rows of 1,000, but only a tenth of the bytes: the rest of the rows are ten times larger.
    renderer.render({ type: 'progress', stage: 'convert', done: 500, total: 1000, bytes: { done: 10_000, total: 100_000 } });
    assert.match(text(), /convert\s+50%\s+500\/1,000 rows\s+40 rows\/s\s+10s\s+ETA 1m40s/);
  });

  it('never draws wider than the terminal, and a message after the line starts a line of its own', () => {
    const { stream, text } = fakeStream(true, 40);
    const renderer = new ProgressRenderer({ stream, ticking: false });
    renderer.render({ type: 'planned', files: 2, rows: 123_456, trainRows: 122_221, testRows: 1_235, workers: 8 });
    renderer.render({ type: 'progress', stage: 'convert', done: 61_000, total: 123_456 });
    renderer.render({ type: 'retry', retry: { attempt: 1, delayMs: 2000, status: 503, request: 'GET http://hub/x', reason: '503 Service Unavailable' } });
    const drawn = text().split('\n').slice(1).join('\n');
    for (const segment of segments(drawn).filter((segment) => segment.startsWith('convert'))) assert.ok(segment.length <= 39, `${JSON.stringify(segment)} is ${segment.length} wide`);
    // The retry is written from the start of a cleared line, and the progress line drawn again below it.
    assert.match(text(), /\r\x1b\[2KHub: GET http:\/\/hub\/x answered 503/);
    renderer.close();
    assert.ok(text().endsWith('\r\x1b[2K'), 'closing takes the live line away');
  });

  it('writes a plain line when a stage starts and then at an interval, no control codes, when not a terminal', () => {
    let now = 0;
    const { stream, text } = fakeStream(false);
    const renderer = new ProgressRenderer({ stream, now: () => now, plainInterval: 10_000 });
    renderer.render({ type: 'progress', stage: 'convert', done: 0, total: 1000 });
    now = 4000;
    renderer.render({ type: 'progress', stage: 'convert', done: 200, total: 1000 });
    now = 8000;
    renderer.render({ type: 'progress', stage: 'convert', done: 400, total: 1000 });
    now = 12_000;
    renderer.render({ type: 'progress', stage: 'convert', done: 600, total: 1000 });
    renderer.render({ type: 'progress', stage: 'write', done: 10, total: 100 });
    assert.equal(text(), 'Converting: 1,000 rows\nconvert  60%  600/1,000 rows  50 rows/s  12s  ETA 8s\nWriting shards: 100 rows\n');
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
