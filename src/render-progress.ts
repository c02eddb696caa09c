import type { ConvertEvent, ConvertReport } from './convert-report.js';
import type { DownloadProgress } from './download-dataset.js';
import type { PushEvent } from './push-dataset.js';
import type { VerifyEvent } from './verify.js';
import { formatBytes } from './inspect-input.js';

/** `2m05s`, `41s` */
export function formatDuration(totalSeconds: number): string {
  if (!Number.isFinite(totalSeconds)) return '--';
  const rounded = Math.max(0, Math.round(totalSeconds));
  const minutes = Math.floor(rounded / 60);
  const secs = rounded % 60;
  if (minutes === 0) return `${secs}s`;
  const hours = Math.floor(minutes / 60);
  if (hours === 0) return `${minutes}m${String(secs).padStart(2, '0')}s`;
  return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
}

export interface ProgressRendererOptions {
  /** Where to draw: a terminal gets a live line, anything else one line per stage. */
  stream: NodeJS.WriteStream;
  /** Milliseconds between redraws of the live line. Default 100. */
  interval?: number;
  now?: () => number;
}

/** The events drawn: a conversion's, and a push's. */
export type RenderedEvent = ConvertEvent | PushEvent | VerifyEvent;

function count(value: number): string {
  return value.toLocaleString('en-US');
}

/**
 * Draws convert and push events on a stream: a live line with rows (or bytes) done, rate and ETA per stage on a
 * terminal, and plain lines at stage changes elsewhere (so logs stay readable). Retries are always told, on a line
 * of their own.
 */
export class ProgressRenderer {
  readonly #stream: NodeJS.WriteStream;
  readonly #interval: number;
  readonly #now: () => number;
  #stage = '';
  #stageStarted = 0;
  #lastDraw = 0;
  #live = false;
  #download: DownloadProgress | null = null;
  #downloadStarted = 0;
  #filesDone = -1;

  constructor(options: ProgressRendererOptions) {
    this.#stream = options.stream;
    this.#interval = options.interval ?? 100;
    this.#now = options.now ?? (() => performance.now());
  }

  render(event: RenderedEvent): void {
    const now = this.#now();
    switch (event.type) {
      case 'source': {
        const cached = event.cachedFiles > 0 ? `; ${event.cachedFiles} already in the cache (${formatBytes(event.cachedBytes)})` : '';
        this.#line(
          `Source: ${event.repo} at ${event.revision} (commit ${event.commit.slice(0, 12)}), ${event.files} parquet file(s), ${formatBytes(event.bytes)}${cached}`,
        );
        return;
      }
      case 'planned':
        this.#line(
          event.part === undefined
            ? `Converting ${count(event.rows)} rows from ${event.files} file(s) with ${event.workers} worker(s): ` +
                `${count(event.trainRows)} train, ${count(event.testRows)} test`
            : `Converting part ${event.part.index} of ${event.part.count} (0 to ${event.part.count - 1}): rows ${count(event.part.firstRow)} to ` +
                `${count(event.part.endRow)} of ${count(event.rows)} from ${event.files} file(s), with ${event.workers} worker(s)`,
        );
        return;
      case 'duplicate-input':
        this.#line(`Warning: ${event.duplicate.path} is the same file as ${event.duplicate.sameAs}, given before: it is read once.`);
        return;
      case 'part-finished':
        this.#line(`This part was finished by an earlier run (${event.staging}): nothing to do.`);
        return;
      case 'leftover': {
        const { path: where, pid, action } = event.leftover;
        this.#line(
          action === 'removed'
            ? `Removed ${where}, left by an interrupted run (process ${pid})`
            : `Restored the previous output from ${where}, where an interrupted run (process ${pid}) had moved it`,
        );
        return;
      }
      case 'resume':
        this.#line(
          event.resumed
            ? `Taking up the interrupted run in ${event.staging}: ${event.rowsReused.toLocaleString('en-US')} rows are done and checked, the rest follow`
            : `Starting over: the interrupted run in ${event.staging} cannot be taken up (${event.reason}); its files are removed`,
        );
        return;
      case 'retry':
        this.#line(
          `Hub: ${event.retry.request} ${event.retry.status === null ? `failed (${event.retry.reason})` : `answered ${event.retry.reason}`}; ` +
            `trying again in ${formatDuration(event.retry.delayMs / 1000)} (attempt ${event.retry.attempt + 1})`,
        );
        return;
      case 'download':
        this.#downloadEvent(event.progress, now);
        return;
      case 'done':
      case 'pushed':
        this.#clear();
        return;
      case 'push-phase':
        this.#line(event.message);
        return;
      case 'progress':
        this.#progress(event.stage, event.done, event.total, 'rows', now);
        return;
      case 'push-progress':
        this.#progress('upload', event.bytes, event.totalBytes, 'bytes', now);
        return;
    }
  }

  #downloadEvent(progress: DownloadProgress, now: number): void {
    if (this.#download === null) this.#downloadStarted = now;
    this.#download = progress;
    if (!this.#stream.isTTY) {
      if (progress.filesDone !== this.#filesDone && progress.filesDone > 0) {
        this.#line(`Downloaded ${progress.filesDone}/${progress.files} file(s), ${formatBytes(progress.bytes)} of ${formatBytes(progress.totalBytes)}`);
      }
      this.#filesDone = progress.filesDone;
      return;
    }
    this.#filesDone = progress.filesDone;
    // While rows are being converted, the download shows on the convert line instead.
    if (this.#stage === 'convert') return;
    if (now - this.#lastDraw < this.#interval) return;
    this.#lastDraw = now;
    this.#draw(`download ${this.#downloadText(now)}`);
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

  #progress(stage: string, done: number, total: number, unit: 'rows' | 'bytes', now: number): void {
    if (stage !== this.#stage) {
      this.#clear();
      this.#stage = stage;
      this.#stageStarted = now;
      this.#lastDraw = 0;
      if (!this.#stream.isTTY) this.#line(`${{ convert: 'Converting', write: 'Writing shards', upload: 'Uploading', verify: 'Verifying' }[stage] ?? stage}...`);
    }
    if (!this.#stream.isTTY) return;
    if (now - this.#lastDraw < this.#interval && done < total) return;
    this.#lastDraw = now;
    const elapsed = (now - this.#stageStarted) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY;
    const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
    const amounts =
      unit === 'rows'
        ? `${count(done)}/${count(total)} rows  ${count(Math.round(rate))} rows/s`
        : `${formatBytes(done)}/${formatBytes(total)}  ${formatBytes(rate)}/s`;
    const downloading = stage === 'convert' && this.#download !== null && this.#download.filesDone < this.#download.files;
    this.#draw(`${stage.padEnd(7)} ${String(percent).padStart(3)}%  ${amounts}  ETA ${formatDuration(eta)}${downloading ? `  | download ${this.#downloadText(now)}` : ''}`);
  }

  #draw(text: string): void {
    this.#stream.write(`\r\x1b[2K${text}`);
    this.#live = true;
  }

  #clear(): void {
    if (this.#live) this.#stream.write('\r\x1b[2K');
    this.#live = false;
  }

  #line(text: string): void {
    this.#clear();
    this.#stream.write(`${text}\n`);
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
      `${report.images.distinct.toLocaleString('en-US')} distinct, ${report.images.reused.toLocaleString('en-US')} rows reused an image already prepared` +
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
