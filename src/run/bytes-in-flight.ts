/**
 * The run's account of image data in flight: read and not yet written. The reader adds each batch as it reads it and
 * takes it off when its results go to the writer, which keeps its own count (`writer`); the reader waits while the
 * sum is at the budget (see convertRows). The peak is what report.json tells, and what the tests hold to the budget.
 */
export class BytesInFlight {
  readonly budget: number;
  readonly #writer: () => number;
  #reading = 0;
  #peak = 0;

  /** @param writer the image bytes the writer holds (queued, and in rows waiting for their row group). */
  constructor(budget: number, writer: () => number) {
    this.budget = budget;
    this.#writer = writer;
  }

  /** Bytes held now. */
  held(): number {
    return this.#reading + this.#writer();
  }

  /** The most held at once so far. */
  get peak(): number {
    return this.#peak;
  }

  add(bytes: number): void {
    this.#reading += bytes;
    this.observe();
  }

  release(bytes: number): void {
    this.#reading -= bytes;
  }

  /** Notes the bytes held now (the writer's count moves when it is given rows). */
  observe(): void {
    this.#peak = Math.max(this.#peak, this.held());
  }
}
