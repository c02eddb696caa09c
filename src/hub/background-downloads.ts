import { downloadToCache } from './download-to-cache.js';
import { sizeOf } from './hf-cache.js';
import type { HubSettings } from './hub-settings.js';
import type { DatasetSource, RemoteFile } from './resolve-dataset.js';
import type { RetryEvent } from './retry-fetch.js';

/** How far the background downloads have come. */
export interface DownloadProgress {
  /** Files in all, and how many are in the cache. */
  files: number;
  filesDone: number;
  /** Bytes in the cache (cached files included) and in all. */
  bytes: number;
  totalBytes: number;
  /** Bytes fetched over the network in this run: the basis of a rate. */
  fetched: number;
  /** The file being fetched, or null. */
  current: string | null;
}

/** Download progress, and retries of Hub requests (told as they happen, so a slow Hub is never silent). */
export type DownloadEvent = { type: 'download'; progress: DownloadProgress } | { type: 'retry'; retry: RetryEvent };

/**
 * Downloads a dataset's files one after another in the background, in order, so conversion can start on the first
 * file while later ones download. `ready(i)` resolves when file i is in the cache; `changed()` when progress moves.
 */
export class DatasetDownloads {
  readonly #source: DatasetSource;
  readonly #settings: HubSettings;
  readonly #controller = new AbortController();
  readonly #ready: Promise<void>[] = [];
  readonly #progress: DownloadProgress;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  #wake: (() => void) | null = null;
  #lastTick = 0;
  #doneBytes = 0;

  /**
   * `onRetry` hears of every retried request and broken-off transfer. `wanted` picks the files to download (by index;
   * default all): a part of a multi-machine run fetches only the files its rows are in.
   */
  constructor(
    source: DatasetSource,
    settings: HubSettings,
    options: { signal?: AbortSignal | undefined; onRetry?: (event: RetryEvent) => void; wanted?: (index: number) => boolean } = {},
  ) {
    const signal = options.signal;
    this.#source = source;
    this.#settings = settings;
    this.#onRetry = options.onRetry;
    signal?.addEventListener('abort', () => this.#controller.abort(signal.reason), { once: true });
    const wanted = source.files.filter((_file, index) => options.wanted?.(index) ?? true);
    const cachedBytes = wanted.filter((file) => file.cached).reduce((sum, file) => sum + file.size, 0);
    this.#progress = {
      files: wanted.length,
      filesDone: wanted.filter((file) => file.cached).length,
      bytes: cachedBytes,
      totalBytes: wanted.reduce((sum, file) => sum + file.size, 0),
      fetched: 0,
      current: null,
    };
    this.#doneBytes = cachedBytes;
    let previous: Promise<void> = Promise.resolve();
    for (const file of source.files) {
      if (!wanted.includes(file)) {
        const skipped = Promise.reject(new Error(`${file.path} is not downloaded by this run: it holds no row of its part`));
        skipped.catch(() => undefined);
        this.#ready.push(skipped);
        continue;
      }
      const ready = previous.then(() => this.#fetch(file));
      // Failures surface where the file is awaited; until then they must not count as unhandled.
      ready.catch(() => undefined);
      this.#ready.push(ready);
      previous = ready;
    }
  }

  /** Resolves when file `index` can be read from its `localPath`. */
  ready(index: number): Promise<void> {
    return this.#ready[index] ?? Promise.reject(new RangeError(`no file ${index}`));
  }

  /** Resolves at the next progress report (at most every 250 ms) or retry notice. */
  changed(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /** The latest progress, as an event. */
  event(): DownloadEvent {
    return { type: 'download', progress: { ...this.#progress } };
  }

  get progress(): DownloadProgress {
    return { ...this.#progress };
  }

  /** Every file is in the cache. */
  get finished(): boolean {
    return this.#progress.filesDone === this.#progress.files;
  }

  /** Stops the downloads; a partial file stays in the cache as `.incomplete`, to be resumed by the next run. */
  abort(): void {
    this.#controller.abort();
  }

  #tick(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.#lastTick < 250) return;
    this.#lastTick = now;
    this.#wake?.();
    this.#wake = null;
  }

  async #fetch(file: RemoteFile): Promise<void> {
    if (file.cached) {
      // The snapshot link may be missing when only the blob is cached (fetched at another commit): make it.
      if ((await sizeOf(file.localPath)) !== file.size) await downloadToCache({ source: this.#source, file, settings: this.#settings, signal: this.#controller.signal });
      return;
    }
    this.#progress.current = file.path;
    let startedAt = -1;
    let last = 0;
    await downloadToCache({
      source: this.#source,
      file,
      settings: this.#settings,
      signal: this.#controller.signal,
      onBytes: (bytes) => {
        if (startedAt < 0) startedAt = bytes;
        if (bytes > last) this.#progress.fetched += bytes - Math.max(last, startedAt);
        last = Math.max(last, bytes);
        this.#progress.bytes = this.#doneBytes + bytes;
        this.#tick(false);
      },
      onRetry: (retry) => {
        this.#onRetry?.(retry);
        this.#tick(true);
      },
    });
    this.#doneBytes += file.size;
    this.#progress.bytes = this.#doneBytes;
    this.#progress.filesDone++;
    this.#progress.current = null;
    this.#tick(true);
  }
}
