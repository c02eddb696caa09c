import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryEvent {
  /** The failed attempt, from 1. */
  attempt: number;
  /** Milliseconds until the next attempt. */
  delayMs: number;
  /** HTTP status, or null when the connection failed. */
  status: number | null;
  /** Method and URL without query (which may hold signed credentials). */
  request: string;
  reason: string;
}

export interface RetryOptions {
  /** Attempts after the first. Default 6. */
  retries?: number;
  /** First backoff in milliseconds, doubled each attempt with up to 50% jitter. Default 1000. */
  baseDelayMs?: number;
  /** Longest wait between attempts, Retry-After included. Default 120 000. */
  maxDelayMs?: number;
  /** Told of every retry, for progress output. */
  onRetry?: (event: RetryEvent) => void;
  /** Waits between attempts (default: a timer); tests pass one that records the delay and returns at once. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/** The wait before attempt `attempt + 1`: `baseDelayMs` × 2^(attempt-1), plus up to 50% jitter, at most `maxDelayMs`. */
export function backoffMs(options: RetryOptions, attempt: number): number {
  const backoff = (options.baseDelayMs ?? 1000) * 2 ** (attempt - 1) * (1 + Math.random() * 0.5);
  return Math.min(options.maxDelayMs ?? 120_000, backoff);
}

/** Waits `ms` with the options' `sleep`, or a timer that `signal` cuts short. */
export function waitBeforeRetry(options: RetryOptions, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return options.sleep === undefined ? sleep(ms, undefined, signal === undefined ? {} : { signal }) : options.sleep(ms, signal);
}

type Fetch = typeof fetch;

/** Statuses worth trying again: rate limits and server-side failures. */
function retryable(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505);
}

/** Retry-After as seconds or an HTTP date, in milliseconds; null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** The system error code of a failed request (`ENOTFOUND`, `ECONNREFUSED`...), on the error or its cause. */
export function errorCode(error: unknown): string | undefined {
  for (let at: unknown = error; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
  }
  return undefined;
}

/** Request bodies that can be sent again: a stream is spent by the first attempt. */
function replayable(body: unknown): boolean {
  return !(body instanceof ReadableStream);
}

function describe(input: string | URL | Request, init: RequestInit | undefined): string {
  const url = new URL(input instanceof Request ? input.url : String(input));
  return `${(init?.method ?? 'GET').toUpperCase()} ${url.origin}${url.pathname}`;
}

/**
 * Wraps a fetch so that 429 and 5xx answers and dropped connections are tried again with exponential backoff,
 * waiting as long as a `Retry-After` header asks (up to `maxDelayMs`). Requests whose body is a stream, aborted
 * requests and a host name that does not resolve are not retried. The last failed response is returned as it came, for the caller's own error handling.
 */
export function retryFetch(base: Fetch, options: RetryOptions = {}): Fetch {
  const retries = options.retries ?? 6;
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    for (let attempt = 1; ; attempt++) {
      const last = attempt > retries || !replayable(init?.body);
      let status: number | null = null;
      let reason: string;
      let hinted: number | null = null;
      try {
        const response = await base(input, init);
        if (!retryable(response.status) || last) return response;
        status = response.status;
        hinted = retryAfterMs(response.headers.get('retry-after'));
        reason = `${response.status} ${response.statusText}`.trim();
        await response.body?.cancel().catch(() => undefined);
      } catch (error) {
        if (last || init?.signal?.aborted === true || (error as Error).name === 'AbortError') throw error;
        // A name that does not resolve will not resolve in a minute either: a typo in HF_ENDPOINT, or no network.
        if (errorCode(error) === 'ENOTFOUND') throw error;
        reason = (error as Error).message;
      }
      const delayMs = hinted === null ? backoffMs(options, attempt) : Math.min(options.maxDelayMs ?? 120_000, hinted);
      options.onRetry?.({ attempt, delayMs, status, request: describe(input, init), reason });
      await waitBeforeRetry(options, delayMs, init?.signal ?? undefined);
    }
  };
  return wrapped as Fetch;
}
