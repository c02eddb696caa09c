/** What the uploads of a push sent, counted from the requests that carried file content. */
export interface UploadTally {
  /** Bytes of the request bodies that carried content and were accepted: LFS objects or parts, Xet xorbs and shards. */
  sent: number;
  /**
   * Of the files' bytes, those the Hub did not have and that went up: an LFS object whole, the chunks of a Xet xorb
   * (counted uncompressed). The files' bytes less these are what deduplication spared.
   */
  newContent: number;
  /** Xorbs and shards accepted: above zero, the push went through Xet. */
  xorbs: number;
  shards: number;
}

/** A Xet chunk's header: version, stored length (3 bytes), compression scheme, length uncompressed (3 bytes). */
const CHUNK_HEADER_BYTES = 8;

/** The bytes of the chunks in a serialized xorb, uncompressed, read from their headers. */
function xorbContentBytes(xorb: Uint8Array): number {
  let bytes = 0;
  for (let at = 0; at + CHUNK_HEADER_BYTES <= xorb.byteLength; ) {
    const stored = (xorb[at + 1] ?? 0) | ((xorb[at + 2] ?? 0) << 8) | ((xorb[at + 3] ?? 0) << 16);
    bytes += (xorb[at + 5] ?? 0) | ((xorb[at + 6] ?? 0) << 8) | ((xorb[at + 7] ?? 0) << 16);
    at += CHUNK_HEADER_BYTES + stored;
  }
  return bytes;
}

function bodyBytes(body: unknown): Uint8Array | Blob | null {
  if (body instanceof Blob || body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return null;
}

/**
 * Wraps the fetch a commit uploads through so that `tally` counts what went up: each request whose body is content
 * (a Blob or bytes; the Hub's JSON and NDJSON calls send strings) and whose answer is a success, once, however many
 * times it was retried underneath. Xorbs (`…/v1/xorbs/…`) count their chunks' bytes as new content; shards
 * (`…/v1/shards`) are metadata; anything else is an LFS object or part, new content whole.
 */
export function meterUploads(base: typeof fetch, tally: UploadTally): typeof fetch {
  const metered = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await base(input, init);
    const body = bodyBytes(init?.body);
    if (body === null || !response.ok) return response;
    const size = body instanceof Blob ? body.size : body.byteLength;
    const { pathname } = new URL(input instanceof Request ? input.url : String(input));
    tally.sent += size;
    if (/\/v1\/xorbs\//.test(pathname) && body instanceof Uint8Array) {
      tally.newContent += xorbContentBytes(body);
      tally.xorbs++;
    } else if (/\/v1\/shards$/.test(pathname)) {
      tally.shards++;
    } else {
      tally.newContent += size;
    }
    return response;
  };
  return metered as typeof fetch;
}
