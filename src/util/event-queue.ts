/**
 * Events that arrive while an async generator awaits something else (a Hub request being retried), to be yielded
 * as they come rather than all at once when the awaited work ends.
 */
export class EventQueue<E> {
  #items: E[] = [];
  #wake: (() => void) | null = null;

  push(event: E): void {
    this.#items.push(event);
    this.#wake?.();
  }

  /** The events queued so far, removed from the queue. */
  take(): E[] {
    return this.#items.splice(0);
  }

  /** Yields the queue's events as they arrive while `work` runs, then returns what it resolved to (or throws). */
  async *during<T>(work: Promise<T>): AsyncGenerator<E, T> {
    let settled = false;
    const outcome = work.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    void outcome.then(() => {
      settled = true;
      this.#wake?.();
    });
    for (;;) {
      const woken = new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      yield* this.take();
      if (settled) break;
      await woken;
    }
    this.#wake = null;
    const result = await outcome;
    if (!result.ok) throw result.error;
    return result.value;
  }
}
