import type { ConvertEvent, ConvertReport } from './convert.js';
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

/**
 * Draws convert events on a stream: a live line with rows done, rows/s and ETA per stage on a terminal, and plain
 * lines at stage changes elsewhere (so logs stay readable).
 */
export class ProgressRenderer {
  readonly #stream: NodeJS.WriteStream;
  readonly #interval: number;
  readonly #now: () => number;
  #stage = '';
  #stageStarted = 0;
  #lastDraw = 0;
  #live = false;

  constructor(options: ProgressRendererOptions) {
    this.#stream = options.stream;
    this.#interval = options.interval ?? 100;
    this.#now = options.now ?? (() => performance.now());
  }

  render(event: ConvertEvent): void {
    const now = this.#now();
    if (event.type === 'planned') {
      this.#line(
        `Converting ${event.rows.toLocaleString('en-US')} rows from ${event.files} file(s) with ${event.workers} worker(s): ` +
          `${event.trainRows.toLocaleString('en-US')} train, ${event.testRows.toLocaleString('en-US')} test`,
      );
      return;
    }
    if (event.type === 'done') {
      this.#clear();
      return;
    }
    if (event.stage !== this.#stage) {
      this.#clear();
      this.#stage = event.stage;
      this.#stageStarted = now;
      this.#lastDraw = 0;
      if (!this.#stream.isTTY) this.#line(`${event.stage === 'convert' ? 'Converting' : 'Writing shards'}...`);
    }
    if (!this.#stream.isTTY) return;
    if (now - this.#lastDraw < this.#interval && event.done < event.total) return;
    this.#lastDraw = now;
    const elapsed = (now - this.#stageStarted) / 1000;
    const rate = elapsed > 0 ? event.done / elapsed : 0;
    const eta = rate > 0 ? (event.total - event.done) / rate : Number.POSITIVE_INFINITY;
    const percent = event.total > 0 ? Math.floor((event.done / event.total) * 100) : 100;
    const text =
      `${event.stage.padEnd(7)} ${String(percent).padStart(3)}%  ${event.done.toLocaleString('en-US')}/${event.total.toLocaleString('en-US')} rows  ` +
      `${Math.round(rate).toLocaleString('en-US')} rows/s  ETA ${formatDuration(eta)}`;
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
  lines.push(`Wrote ${splits} to ${report.output.dir} (${formatBytes(report.output.bytes)}) in ${formatDuration(report.seconds.total)}.`);
  lines.push(
    `Images: ${report.images.kept.toLocaleString('en-US')} kept as they were, ${report.images.reencoded.toLocaleString('en-US')} re-encoded; ` +
      `${report.images.distinct.toLocaleString('en-US')} distinct, ${report.images.reused.toLocaleString('en-US')} rows reused an image already prepared.`,
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
