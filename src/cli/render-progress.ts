import type { ConvertEvent } from '../run/convert-report.js';
import type { PushEvent } from '../hub/push-dataset.js';
import type { VerifyEvent } from '../verify/verify.js';
import { ProgressLine, retryText, type ProgressRendererOptions } from './progress-line.js';
import { ConvertProgress } from './render-convert.js';
import { pushAside, renderPush } from './render-push.js';

/** The events drawn: a conversion's, a push's, and a verify's. */
export type RenderedEvent = ConvertEvent | PushEvent | VerifyEvent;

/**
 * Draws convert, push and verify events on a stream, on one {@link ProgressLine}: the stages they share (rows or
 * bytes done, rate, ETA) and the Hub's retries, which are always told on a line of their own, here; what only a
 * conversion or a push tells, by its own renderer.
 */
export class ProgressRenderer {
  readonly #line: ProgressLine;
  readonly #convert: ConvertProgress;
  /** Bytes a push has sent so far, shown beside its upload's figures. */
  #pushSent = 0;

  constructor(options: ProgressRendererOptions) {
    this.#line = new ProgressLine(options, (stage, now) => (stage === 'upload' ? pushAside(this.#pushSent) : this.#convert.aside(stage, now)));
    this.#convert = new ConvertProgress(this.#line);
  }

  render(event: RenderedEvent): void {
    const now = this.#line.now();
    switch (event.type) {
      case 'retry':
        this.#line.line(retryText(event.retry));
        return;
      case 'progress':
        this.#line.progress(event.stage, event.done, event.total, 'rows', now, event.bytes ?? null);
        return;
      case 'done':
      case 'pushed':
        this.close();
        return;
      case 'push-progress':
        this.#pushSent = event.sentBytes;
        renderPush(this.#line, event, now);
        return;
      case 'push-phase':
        renderPush(this.#line, event, now);
        return;
      default:
        this.#convert.render(event, now);
    }
  }

  /** Takes the live line away and stops redrawing it: what is written next starts on a clean line. */
  close(): void {
    this.#line.close();
  }

  /** Where a generation of `total` rows stands (for `sample`, which has no events of its own). */
  sample(done: number, total: number): void {
    this.#line.progress('sample', done, total, 'rows', this.#line.now(), null);
    if (done >= total) this.close();
  }
}
