import { createHash } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import type { PreparedImage } from './prepare-image.js';

/** Key of an image: the SHA-1 of its bytes. Identical bytes always give the identical prepared image. */
export function imageKey(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('base64');
}

/**
 * What a cached image needs: for an image kept as it was, only that it was valid (its bytes are the input's own);
 * otherwise the re-encoded bytes or the reject.
 */
type Entry = { ok: true; kept: true } | { ok: true; kept: false; bytes: Uint8Array } | { ok: false; code: string; message: string };

interface Shared {
  key: string;
  entry: Entry;
}

/**
 * Prepared images by content, so an image that repeats across rows (about one row in five in the source) is decoded
 * once. Each worker keeps its own map and tells the others over a BroadcastChannel what it prepared; a repeat that
 * races another worker is just prepared twice, with the same result. Re-encoded bytes are kept up to `maxBytes`,
 * oldest dropped first; keys of images kept as they were cost a few dozen bytes each.
 */
export class ImageCache {
  readonly #entries = new Map<string, Entry>();
  readonly #channel: BroadcastChannel;
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(channelName: string, maxBytes = 64 * 2 ** 20) {
    this.#maxBytes = maxBytes;
    this.#channel = new BroadcastChannel(channelName);
    this.#channel.unref();
    this.#channel.onmessage = (event: unknown) => {
      const { key, entry } = (event as { data: Shared }).data;
      this.#store(key, entry);
    };
  }

  /** The prepared image for these bytes if known; a kept image comes back with `bytes` itself. */
  get(key: string, bytes: Uint8Array): PreparedImage | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (!entry.ok) return { ok: false, code: entry.code as never, message: entry.message };
    return entry.kept ? { ok: true, bytes, reencoded: false } : { ok: true, bytes: entry.bytes, reencoded: true };
  }

  /** Remembers a prepared image here and in every other worker. */
  set(key: string, image: PreparedImage): void {
    const entry: Entry = !image.ok
      ? { ok: false, code: image.code, message: image.message }
      : image.reencoded
        ? { ok: true, kept: false, bytes: image.bytes }
        : { ok: true, kept: true };
    this.#store(key, entry);
    this.#channel.postMessage({ key, entry } satisfies Shared);
  }

  #store(key: string, entry: Entry): void {
    if (this.#entries.has(key)) return;
    this.#entries.set(key, entry);
    if (entry.ok && !entry.kept) {
      this.#bytes += entry.bytes.byteLength;
      for (const [oldKey, old] of this.#entries) {
        if (this.#bytes <= this.#maxBytes) break;
        if (old.ok && !old.kept) {
          this.#bytes -= old.bytes.byteLength;
          this.#entries.delete(oldKey);
        }
      }
    }
  }
}
