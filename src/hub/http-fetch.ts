import http from 'node:http';
import https from 'node:https';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** What `@huggingface/hub` passes beside a request: a callback for upload progress (0 to 1). */
interface ProgressHint {
  progressCallback?: (progress: number) => void;
}

type FetchInit = RequestInit & { progressHint?: ProgressHint };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const NULL_BODY = new Set([101, 204, 205, 304]);

const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

async function bodyOf(body: unknown): Promise<{ stream: Readable | null; length: number | null }> {
  if (body === undefined || body === null) return { stream: null, length: 0 };
  if (typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer) {
    // Bytes are sent from where they are, not copied: a Xet xorb is up to 64 MB.
    const buffer = typeof body === 'string' ? Buffer.from(body) : body instanceof ArrayBuffer ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return { stream: Readable.from([buffer]), length: buffer.byteLength };
  }
  if (body instanceof Blob) {
    // The blob is read a chunk at a time as the socket drains: a 500 MB file is never in memory whole.
    return { stream: Readable.fromWeb(body.stream() as import('node:stream/web').ReadableStream), length: body.size };
  }
  if (body instanceof URLSearchParams) return bodyOf(body.toString());
  throw new TypeError(`httpFetch: unsupported request body of type ${Object.prototype.toString.call(body)}`);
}

function send(url: URL, method: string, headers: Headers, body: unknown, init: FetchInit): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const signal = init.signal ?? undefined;
    if (signal?.aborted === true) {
      reject(abortError(signal));
      return;
    }
    const start = ({ stream, length }: { stream: Readable | null; length: number | null }): void => {
      const outgoing: Record<string, string> = {};
      headers.forEach((value, key) => (outgoing[key] = value));
      if (length !== null && stream !== null) outgoing['content-length'] = String(length);
      const transport = url.protocol === 'https:' ? https : http;
      const request = transport.request(url, { method, headers: outgoing, agent: agents[url.protocol as 'http:' | 'https:'] });
      const onAbort = (): void => {
        request.destroy(abortError(signal as AbortSignal) as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      request.once('response', (response) => {
        response.once('close', () => signal?.removeEventListener('abort', onAbort));
        resolve(response);
      });
      request.once('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(signal?.aborted === true ? abortError(signal) : new TypeError(`fetch failed: ${error.message}`, { cause: error }));
      });
      if (stream === null) {
        request.end();
        return;
      }
      const progress = init.progressHint?.progressCallback;
      let sent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          sent += chunk.byteLength;
          if (progress !== undefined && length !== null && length > 0) progress(Math.min(1, sent / length));
          done(null, chunk);
        },
      });
      // A failed upload surfaces through the request's 'error' (or an early response); the pipeline's own rejection
      // would only repeat it.
      pipeline(stream, counter, request).catch(() => undefined);
    };
    bodyOf(body).then((prepared) => {
      try {
        start(prepared);
      } catch (error) {
        // A header Node refuses, an unsupported protocol: fail this fetch instead of leaving it pending.
        reject(error instanceof TypeError ? error : new TypeError(`fetch failed: ${(error as Error).message}`, { cause: error }));
      }
    }, reject);
  });
}

/**
 * A `fetch` on `node:http`, for `@huggingface/hub`: request bodies (Blobs such as `fs.openAsBlob` files) are streamed
 * from disk as the socket drains, where Node's built-in fetch held a whole 1 GB upload in memory. Follows redirects
 * (dropping `Authorization` when the origin changes), honours `signal`, and reports upload progress through the
 * library's `progressHint`. Responses are ordinary `Response` objects with a streaming body.
 */
export async function httpFetch(input: string | URL | Request, init: FetchInit = {}): Promise<Response> {
  if (input instanceof Request) throw new TypeError('httpFetch takes a URL and an init object, not a Request');
  let url = new URL(input);
  let method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  let body: unknown = init.body;
  for (let redirects = 0; ; redirects++) {
    const response = await send(url, method, headers, body, init);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (REDIRECTS.has(status) && location !== undefined && init.redirect !== 'manual') {
      response.resume();
      if (redirects >= MAX_REDIRECTS) throw new TypeError(`fetch failed: more than ${MAX_REDIRECTS} redirects from ${String(input)}`);
      const next = new URL(location, url);
      if (next.origin !== url.origin) headers.delete('authorization');
      if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
        headers.delete('content-type');
      }
      url = next;
      continue;
    }
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(response.headers)) {
      if (Array.isArray(value)) for (const item of value) responseHeaders.append(key, item);
      else if (value !== undefined) responseHeaders.set(key, value);
    }
    const hasBody = method !== 'HEAD' && !NULL_BODY.has(status);
    if (!hasBody) response.resume();
    const result = new Response(hasBody ? (Readable.toWeb(response) as ReadableStream<Uint8Array>) : null, {
      status,
      statusText: response.statusMessage ?? '',
      headers: responseHeaders,
    });
    // The library puts `response.url` in its errors; a constructed Response has none of its own.
    Object.defineProperty(result, 'url', { value: url.href });
    return result;
  }
}
