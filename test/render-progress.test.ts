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
