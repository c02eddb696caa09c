import type { ConvertEvent, ConvertReport } from '../run/convert-report.js';
import type { DownloadProgress } from '../hub/background-downloads.js';
import { formatBytes } from '../util/format.js';
import { count, formatDuration } from '../util/format.js';
import type { ProgressLine } from './progress-line.js';

/** The events of a conversion (and of finalize) that only it has: what the shared stages and retries leave. */
export type ConvertOnlyEvent = Exclude<ConvertEvent, { type: 'progress' | 'done' | 'retry' }>;

/**
 * Draws what a conversion tells beside its stages: the source and the plan, warnings, a run taken up, and the download
 * of the source, on its own live line until rows are converted, then beside them on the convert line.
 */
export class ConvertProgress {
  readonly #line: ProgressLine;
  #download: DownloadProgress | null = null;
  #downloadStarted = 0;
  #filesDone = -1;

  constructor(line: ProgressLine) {
    this.#line = line;
  }

  render(event: ConvertOnlyEvent, now: number): void {
    switch (event.type) {
      case 'source': {
        const cached = event.cachedFiles > 0 ? `; ${event.cachedFiles} already in the cache (${formatBytes(event.cachedBytes)})` : '';
        this.#line.line(
          `Source: ${event.repo} at ${event.revision} (commit ${event.commit.slice(0, 12)}), ${event.files} parquet file(s), ${formatBytes(event.bytes)}${cached}`,
        );
        return;
      }
      case 'planned':
        this.#line.line(
          event.part === undefined
            ? `Converting ${count(event.rows)} rows from ${event.files} file(s) with ${event.workers} worker(s): ` +
                `${count(event.trainRows)} train, ${count(event.testRows)} test`
            : `Converting part ${event.part.index} of ${event.part.count} (0 to ${event.part.count - 1}): rows ${count(event.part.firstRow)} to ` +
                `${count(event.part.endRow)} of ${count(event.rows)} from ${event.files} file(s), with ${event.workers} worker(s)`,
        );
        // The live line is there at once, before the first batch comes back.
        this.#line.progress('convert', 0, event.part === undefined ? event.rows : event.part.endRow - event.part.firstRow, 'rows', now, null);
        return;
      case 'duplicate-input':
        this.#line.line(`Warning: ${event.duplicate.path} is the same file as ${event.duplicate.sameAs}, given before: it is read once.`);
        return;
      case 'part-finished':
        this.#line.line(`This part was finished by an earlier run (${event.staging}): nothing to do.`);
        return;
      case 'leftover': {
        const { path: where, pid, action } = event.leftover;
        this.#line.line(
          action === 'removed'
            ? `Removed ${where}, which an interrupted run (process ${pid}) was removing`
            : `Put in place the finished output an interrupted run (process ${pid}) was publishing from ${where}`,
        );
        return;
      }
      case 'resume':
        this.#line.line(
          event.resumed
            ? `Taking up the interrupted run in ${event.staging}: ${event.rowsReused.toLocaleString('en-US')} rows are done and checked, the rest follow`
            : `Starting over: the interrupted run in ${event.staging} cannot be taken up (${event.reason}); its files are removed`,
        );
        return;
      case 'download':
        this.#downloadEvent(event.progress, now);
        return;
    }
  }

  /** What the convert line shows after its figures while the source is still downloading: `  | download …`, or ''. */
  aside(stage: string, now: number): string {
    const downloading = stage === 'convert' && this.#download !== null && this.#download.filesDone < this.#download.files;
    return downloading ? `  | download ${this.#downloadText(now)}` : '';
  }

  #downloadEvent(progress: DownloadProgress, now: number): void {
    if (this.#download === null) this.#downloadStarted = now;
    this.#download = progress;
    if (!this.#line.terminal) {
      if (progress.filesDone !== this.#filesDone && progress.filesDone > 0) {
        this.#line.line(`Downloaded ${progress.filesDone}/${progress.files} file(s), ${formatBytes(progress.bytes)} of ${formatBytes(progress.totalBytes)}`);
      }
      this.#filesDone = progress.filesDone;
      return;
    }
    this.#filesDone = progress.filesDone;
    // While rows are being converted, the download shows on the convert line instead.
    if (this.#line.stage === 'convert') return;
    this.#line.drawThrottled(`download ${this.#downloadText(now)}`, now);
  }

  #downloadText(now: number): string {
    const progress = this.#download;
    if (progress === null) return '';
    const elapsed = (now - this.#downloadStarted) / 1000;
    const rate = elapsed > 0 ? progress.fetched / elapsed : 0;
    const eta = rate > 0 ? (progress.totalBytes - progress.bytes) / rate : Number.POSITIVE_INFINITY;
    const percent = progress.totalBytes > 0 ? Math.floor((progress.bytes / progress.totalBytes) * 100) : 100;
    return (
      `${String(percent).padStart(3)}%  ${formatBytes(progress.bytes)}/${formatBytes(progress.totalBytes)}  ` +
      `file ${Math.min(progress.filesDone + 1, progress.files)}/${progress.files}  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`
    );
  }
}

/** The closing summary of a run, for people. */
export function summarize(report: ConvertReport): string {
  const lines: string[] = [];
  const splits = Object.entries(report.output.splits)
    .map(([name, split]) => `${split.rows.toLocaleString('en-US')} ${name} rows in ${split.files.length} shard(s)`)
    .join(', ');
  const part = report.part;
  lines.push(
    part === undefined
      ? `Wrote ${splits} to ${report.output.dir} (${formatBytes(report.output.bytes)}) in ${formatDuration(report.seconds.total)}.`
      : `Part ${part.index} of ${part.count} done: ${splits === '' ? 'no rows' : splits} in ${report.output.dir} (${formatBytes(report.output.bytes)}) ` +
          `in ${formatDuration(report.seconds.total)}. Once every part is done: rlaif-v finalize ${part.output}`,
  );
  if (report.finalize !== undefined) {
    const { linked, copied, rewritten } = report.finalize.rows;
    lines.push(
      `Put together from ${report.parts?.length ?? 0} part(s) in ${formatDuration(report.finalize.seconds)}: rows in whole files taken as they were ${count(linked)}, ` +
        `in row groups copied ${count(copied)}, encoded again ${count(rewritten)}.`,
    );
  }
  if (report.resume?.resumed === true) {
    lines.push(`Taken up from an interrupted run: ${report.resume.rowsReused.toLocaleString('en-US')} rows were already done; the counts below are this run's.`);
  }
  const cached = report.images.fromCache ?? 0;
  lines.push(
    `Images: ${report.images.kept.toLocaleString('en-US')} kept as they were, ${report.images.reencoded.toLocaleString('en-US')} re-encoded; ` +
      `${report.images.distinct.toLocaleString('en-US')} distinct, and ${report.images.repeated.toLocaleString('en-US')} rows whose image an earlier row has` +
      `${cached > 0 ? `; ${cached.toLocaleString('en-US')} found in the cache of earlier runs, ${(report.images.validated ?? 0).toLocaleString('en-US')} decoded` : ''}.`,
  );
  if (report.rejected.rows > 0) {
    const codes = Object.entries(report.rejected.byCode)
      .map(([code, count]) => `${code} ${count}`)
      .join(', ');
    lines.push(
      `Rejected ${report.rejected.rows.toLocaleString('en-US')} row(s) (${codes}); they are in ${report.output.dir}/${report.rejected.file ?? ''}.`,
    );
  }
  return lines.join('\n');
}
