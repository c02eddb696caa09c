import type { RetryEvent } from '../hub/retry-fetch.js';
import { count, formatBytes, formatDuration } from '../util/format.js';

/** `text` cut to `width` characters, with an ellipsis where it was cut. */
export function fitWidth(text: string, width: number): string {
  if (width < 2 || text.length <= width) return text;
  return `${text.slice(0, width - 1)}…`;
}

/** A Hub request that failed and is tried again, as told on a line of its own (by a conversion and by a push). */
export function retryText(retry: RetryEvent): string {
  return (
    `Hub: ${retry.request} ${retry.status === null ? `failed (${retry.reason})` : `answered ${retry.reason}`}; ` +
    `trying again in ${formatDuration(retry.delayMs / 1000)} (attempt ${retry.attempt + 1})`
  );
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
 * The line the progress of every command is drawn on: on a terminal, a live line with amounts done, rate and ETA per
 * stage, never wider than the terminal (a line that wraps leaves a stale copy at every redraw), redrawn on a timer so
 * that it moves from the start; messages go on lines of their own above it. Elsewhere (a log, Slurm, CI): a plain
 * line when a stage starts and then every `plainInterval`.
 */
export class ProgressLine {
  readonly #stream: NodeJS.WriteStream;
  readonly #interval: number;
  readonly #plainInterval: number;
  readonly #now: () => number;
  readonly #ticking: boolean;
  readonly #aside: (stage: string, now: number) => string;
  #stage: StageState | null = null;
  #lastDraw = 0;
  #lastPlain = 0;
  #live = false;
  #timer: NodeJS.Timeout | null = null;

  /** `aside`: what the live line shows after a stage's figures (a conversion's download under way), or ''. */
  constructor(options: ProgressRendererOptions, aside: (stage: string, now: number) => string = () => '') {
    this.#stream = options.stream;
    this.#interval = options.interval ?? 200;
    this.#plainInterval = options.plainInterval ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    this.#ticking = (options.ticking ?? true) && this.#stream.isTTY === true;
    this.#aside = aside;
  }

  /** The clock's time. */
  now(): number {
    return this.#now();
  }

  /** Whether the stream is a terminal, which gets a live line. */
  get terminal(): boolean {
    return this.#stream.isTTY === true;
  }

  /** The name of the stage being drawn, if any. */
  get stage(): string | null {
    return this.#stage?.name ?? null;
  }

  /** Where stage `name` stands at `now`: drawn at once when the stage is new, then no oftener than the interval. */
  progress(name: string, done: number, total: number, unit: 'rows' | 'bytes', now: number, bytes: { done: number; total: number } | null): void {
    if (this.#stage?.name !== name) {
      this.#clear();
      this.#stage = { name, unit, done, total, bytes, started: now, first: null };
      // A new stage is drawn at once.
      this.#lastDraw = Number.NEGATIVE_INFINITY;
      if (this.#stream.isTTY !== true) {
        this.line(`${STAGE_NAMES[name] ?? name}: ${unit === 'rows' ? `${count(total)} rows` : formatBytes(total)}`);
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
        this.line(this.#stageText(now));
      }
      return;
    }
    if (now - this.#lastDraw < this.#interval && done < total) return;
    this.#redraw(now);
  }

  /** Draws `text` on the live line, unless it was drawn less than an interval before `now`. */
  drawThrottled(text: string, now: number): void {
    if (now - this.#lastDraw < this.#interval) return;
    this.#lastDraw = now;
    this.#draw(text);
  }

  /** Writes a message on a line of its own, the live line drawn again below it. */
  line(text: string): void {
    this.#clear();
    this.#stream.write(`${text}\n`);
    if (this.#stage !== null && this.#stream.isTTY === true && this.#stage.done < this.#stage.total) this.#redraw(this.#now());
  }

  /** Takes the live line away and stops redrawing it: what is written next starts on a clean line. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#clear();
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
    const elapsed = formatDuration((now - stage.started) / 1000);
    return `${name.padEnd(7)} ${String(percent).padStart(3)}%  ${amounts}  ${elapsed}  ETA ${formatDuration(eta)}${this.#aside(name, now)}`;
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
}
