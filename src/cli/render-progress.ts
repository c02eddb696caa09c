import type { ConvertEvent, ConvertReport } from '../run/convert-report.js';
import type { DownloadProgress } from '../hub/background-downloads.js';
import type { PushEvent } from '../hub/push-dataset.js';
import type { VerifyEvent } from '../verify/verify.js';
import { formatBytes } from '../plan/inspect-input.js';

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
  /** Where to draw: a terminal gets a live line, anything else a plain line now and then. */
  stream: NodeJS.WriteStream;
  /** Milliseconds between redraws of the live line. Default 200. */
  interval?: number;
  /** Milliseconds between the plain progress lines written when the stream is not a terminal. Default 10 s. */
  plainInterval?: number;
  now?: () => number;
  /** Redraw the live line on a timer, so that it moves while no event comes. Default true on a terminal. */
  ticking?: boolean;
}

/** The events drawn: a conversion's, a push's, and a verify's. */
export type RenderedEvent = ConvertEvent | PushEvent | VerifyEvent;

function count(value: number): string {
  return value.toLocaleString('en-US');
}

/** `text` cut to `width` characters, with an ellipsis where it was cut. */
export function fitWidth(text: string, width: number): string {
  if (width < 2 || text.length <= width) return text;
  return `${text.slice(0, width - 1)}…`;
}

const STAGE_NAMES: Record<string, string> = { convert: 'Converting', write: 'Writing shards', upload: 'Uploading', verify: 'Verifying', sample: 'Writing the sample' };

/** Where a stage stands: its last figures, and the first ones after it began to move (what rates are taken from). */
interface StageState {
  name: string;
  unit: 'rows' | 'bytes';
  done: number;
  total: number;
  /** Input bytes done and in all, when the stage says (a conversion's ETA is taken from them: rows differ in size). */
  bytes: { done: number; total: number } | null;
  started: number;
  first: { at: number; done: number; bytes: number } | null;
}

/**
 * Draws convert, push and verify events on a stream. On a terminal: a live line with amounts done, rate and ETA per
 * stage, never wider than the terminal (a line that wraps leaves a stale copy at every redraw), redrawn on a timer so
 * that it moves from the start; messages go on lines of their own above it. Elsewhere (a log, Slurm, CI): a plain
 * line when a stage starts and then every `plainInterval`. Retries are always told, on a line of their own.
 */
export class ProgressRenderer {
  readonly #stream: NodeJS.WriteStream;
  readonly #interval: number;
  readonly #plainInterval: number;
  readonly #now: () => number;
  readonly #ticking: boolean;
  #stage: StageState | null = null;
  #lastDraw = 0;
  #lastPlain = 0;
  #live = false;
  #timer: NodeJS.Timeout | null = null;
  #download: DownloadProgress | null = null;
  #downloadStarted = 0;
  #filesDone = -1;

  constructor(options: ProgressRendererOptions) {
    this.#stream = options.stream;
    this.#interval = options.interval ?? 200;
    this.#plainInterval = options.plainInterval ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    this.#ticking = (options.ticking ?? true) && this.#stream.isTTY === true;
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
        // The live line is there at once, before the first batch comes back.
        this.#progress('convert', 0, event.part === undefined ? event.rows : event.part.endRow - event.part.firstRow, 'rows', now, null);
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
            ? `Removed ${where}, which an interrupted run (process ${pid}) was removing`
            : `Put in place the finished output an interrupted run (process ${pid}) was publishing from ${where}`,
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
        this.close();
        return;
      case 'push-phase':
        this.#line(event.message);
        return;
      case 'progress':
        this.#progress(event.stage, event.done, event.total, 'rows', now, event.bytes ?? null);
        return;
      case 'push-progress':
        this.#progress('upload', event.bytes, event.totalBytes, 'bytes', now, null);
        return;
    }
  }

  /** Takes the live line away and stops redrawing it: what is written next starts on a clean line. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#clear();
  }

  /** Where a generation of `total` rows stands (for `sample`, which has no events of its own). */
  sample(done: number, total: number): void {
    this.#progress('sample', done, total, 'rows', this.#now(), null);
    if (done >= total) this.close();
  }

  #downloadEvent(progress: DownloadProgress, now: number): void {
    if (this.#download === null) this.#downloadStarted = now;
    this.#download = progress;
    if (this.#stream.isTTY !== true) {
      if (progress.filesDone !== this.#filesDone && progress.filesDone > 0) {
        this.#line(`Downloaded ${progress.filesDone}/${progress.files} file(s), ${formatBytes(progress.bytes)} of ${formatBytes(progress.totalBytes)}`);
      }
      this.#filesDone = progress.filesDone;
      return;
    }
    this.#filesDone = progress.filesDone;
    // While rows are being converted, the download shows on the convert line instead.
    if (this.#stage?.name === 'convert') return;
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

  #progress(name: string, done: number, total: number, unit: 'rows' | 'bytes', now: number, bytes: { done: number; total: number } | null): void {
    if (this.#stage?.name !== name) {
      this.#clear();
      this.#stage = { name, unit, done, total, bytes, started: now, first: null };
      // A new stage is drawn at once.
      this.#lastDraw = Number.NEGATIVE_INFINITY;
      if (this.#stream.isTTY !== true) {
        this.#line(`${STAGE_NAMES[name] ?? name}: ${unit === 'rows' ? `${count(total)} rows` : formatBytes(total)}`);
        this.#lastPlain = now;
      }
      if (this.#ticking && this.#timer === null) {
        this.#timer = setInterval(() => this.#redraw(this.#now()), this.#interval);
        this.#timer.unref();
      }
    }
    const stage = this.#stage;
    stage.done = done;
    stage.total = total;
    stage.bytes = bytes;
    // Rates are taken from the first figures that moved, not from the stage's start: starting up is not the pace.
    if (stage.first === null && done > 0) stage.first = { at: now, done, bytes: bytes?.done ?? 0 };
    if (this.#stream.isTTY !== true) {
      if (now - this.#lastPlain >= this.#plainInterval && done < total) {
        this.#lastPlain = now;
        this.#line(this.#stageText(now));
      }
      return;
    }
    if (now - this.#lastDraw < this.#interval && done < total) return;
    this.#redraw(now);
  }

  #redraw(now: number): void {
    if (this.#stage === null) return;
    this.#lastDraw = now;
    this.#draw(this.#stageText(now));
  }

  /** `convert  45%  3,600/8,000 rows  960 rows/s  1m02s  ETA 4s`, the figures of the stage at `now`. */
  #stageText(now: number): string {
    const stage = this.#stage;
    if (stage === null) return '';
    const { name, done, total, unit, bytes, first } = stage;
    const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
    const since = first === null ? 0 : (now - first.at) / 1000;
    const rate = since >= 1 && first !== null ? (done - first.done) / since : 0;
    // The ETA from input bytes where the stage has them (rows differ in size), else from rows; none until a second of pace is known.
    let eta = Number.POSITIVE_INFINITY;
    if (since >= 1 && first !== null) {
      const byteRate = bytes === null ? 0 : (bytes.done - first.bytes) / since;
      eta = byteRate > 0 && bytes !== null ? (bytes.total - bytes.done) / byteRate : rate > 0 ? (total - done) / rate : eta;
    }
    if (done >= total) eta = 0;
    const amounts =
      unit === 'rows' ? `${count(done)}/${count(total)} rows  ${first === null ? '--' : count(Math.round(rate))} rows/s` : `${formatBytes(done)}/${formatBytes(total)}  ${formatBytes(rate)}/s`;
    const downloading = name === 'convert' && this.#download !== null && this.#download.filesDone < this.#download.files;
    const elapsed = formatDuration((now - stage.started) / 1000);
    return `${name.padEnd(7)} ${String(percent).padStart(3)}%  ${amounts}  ${elapsed}  ETA ${formatDuration(eta)}${downloading ? `  | download ${this.#downloadText(now)}` : ''}`;
  }

  #draw(text: string): void {
    const width = this.#stream.columns ?? 80;
    this.#stream.write(`\r\x1b[2K${fitWidth(text, width - 1)}`);
    this.#live = true;
  }

  #clear(): void {
    if (this.#live) this.#stream.write('\r\x1b[2K');
    this.#live = false;
  }

  #line(text: string): void {
    this.#clear();
    this.#stream.write(`${text}\n`);
    if (this.#stage !== null && this.#stream.isTTY === true && this.#stage.done < this.#stage.total) this.#redraw(this.#now());
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
