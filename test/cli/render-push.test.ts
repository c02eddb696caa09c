import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PushReport } from '../../src/hub/push-dataset.js';
import { ProgressRenderer } from '../../src/cli/render-progress.js';
import { pushSummary } from '../../src/cli/render-push.js';

const REPORT: PushReport = {
  repo: 'me/rlaif-v',
  url: 'https://huggingface.co/datasets/me/rlaif-v',
  commits: [{ oid: 'a', title: 'Upload 6 data file(s)', files: 6 }],
  uploaded: ['data/train-00000-of-00006.parquet'],
  skipped: ['data/test-00000-of-00001.parquet'],
  deleted: [],
  transfer: 'xet',
  bytesInFiles: 32_260_773,
  bytesUploaded: 32_260_773,
  bytesSent: 2_859_906,
  bytesDeduplicated: 29_389_186,
};

describe('a push drawn for people', () => {
  it('shows the bytes sent beside the upload figures on the live line', () => {
    let written = '';
    const stream = { isTTY: true, columns: 160, write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WriteStream;
    const renderer = new ProgressRenderer({ stream, now: () => 0, ticking: false });
    renderer.render({ type: 'push-progress', bytes: 16_000_000, totalBytes: 32_000_000, sentBytes: 1_500_000 });
    assert.match(written, /upload\s+50%\s+15\.3 MiB\/30\.5 MiB .* sent 1\.4 MiB/);
  });

  it('sums up what was in the files, what was sent and how, and what deduplication spared', () => {
    assert.match(pushSummary(REPORT), /1 shard\(s\) committed, 1 already there; 1 commit\(s\)\. 30\.8 MiB in files: 2\.7 MiB sent \(Xet\), 28\.0 MiB deduplicated\.$/);
    assert.match(pushSummary({ ...REPORT, transfer: 'lfs', bytesSent: REPORT.bytesInFiles, bytesDeduplicated: 0 }), /30\.8 MiB sent \(LFS\), 0 B deduplicated\./);
    // Nothing committed: nothing to say about bytes.
    assert.doesNotMatch(pushSummary({ ...REPORT, uploaded: [], transfer: null, bytesInFiles: 0, bytesSent: 0, bytesDeduplicated: 0 }), /sent/);
  });
});
