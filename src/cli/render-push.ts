import type { PushEvent, PushReport } from '../hub/push-dataset.js';
import type { ProgressLine } from './progress-line.js';
import { formatBytes } from '../util/format.js';

/** The events of a push that only it has: what the shared retries and its end leave. */
export type PushOnlyEvent = Exclude<PushEvent, { type: 'retry' | 'pushed' }>;

/** Draws a push: each phase on a line of its own, the upload on the live line in bytes. */
export function renderPush(line: ProgressLine, event: PushOnlyEvent, now: number): void {
  switch (event.type) {
    case 'push-phase':
      line.line(event.message);
      return;
    case 'push-progress':
      line.progress('upload', event.bytes, event.totalBytes, 'bytes', now, null);
      return;
  }
}

/** What the upload's live line shows after its figures: the bytes sent so far (deduplicated chunks are done, not sent). */
export function pushAside(sentBytes: number): string {
  return `  sent ${formatBytes(sentBytes)}`;
}

/** The closing line of a push, for people: what was committed, and what it cost to send. */
export function pushSummary(report: PushReport): string {
  const sent =
    report.uploaded.length === 0
      ? ''
      : ` ${formatBytes(report.bytesInFiles)} in files: ${formatBytes(report.bytesSent)} sent${report.transfer === null ? '' : ` (${report.transfer === 'xet' ? 'Xet' : 'LFS'})`}, ` +
        `${formatBytes(report.bytesDeduplicated)} deduplicated.`;
  return (
    `Pushed to ${report.url}: ${report.uploaded.length} shard(s) committed, ${report.skipped.length} already there` +
    `${report.deleted.length > 0 ? `, ${report.deleted.length} old shard(s) removed` : ''}; ${report.commits.length} commit(s).${sent}`
  );
}
