import { createHash } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import type { PreparedImage } from './prepare-image.js';

/**
 * Key of an image: the SHA-256 of its bytes (base64). Identical bytes always give the identical prepared image; the
 * hash must resist collisions, as a verdict kept across runs (see image-store) would let any image with the same key
 * through unchecked.
 */
export function imageKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64');
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

/** A slot being written: its key is not readable yet. */
const BUSY = -1;
/** A key is the whole SHA-256: eight 32-bit words. */
const WORDS = 8;

/**
 * A table of the images found whole and kept as they are, in memory all workers share, so that each sees at once
 * what another found (a BroadcastChannel message waits for the receiver's event loop, which a busy worker does not
 * visit). Keys are the image's whole SHA-256 (a verdict found for one image must never pass another), in open addressing; an entry is claimed with a compare-and-swap,
 * filled, then published. Only this one verdict lives here, because it needs no data: the bytes are the input's own.
 * Slot 0 holds the count. When the table is 70% full it takes no more: sharing then goes on by messages alone.
 */
export class KeptTable {
  readonly #table: Int32Array;
  readonly #mask: number;

  constructor(buffer: SharedArrayBuffer) {
    this.#table = new Int32Array(buffer);
    this.#mask = this.#table.length / WORDS - 1;
  }

  /** The table for `rows` keys: a power of two of slots, twice the keys, between 2^10 and 2^22 (128 MB). */
  static buffer(rows: number): SharedArrayBuffer {
    const slots = 2 ** Math.min(22, Math.max(10, Math.ceil(Math.log2(2 * rows + 1))));
    return new SharedArrayBuffer(slots * WORDS * 4);
  }

  #find(words: Int32Array, insert: boolean): boolean {
    const table = this.#table;
    if (insert && Atomics.load(table, 0) > 0.7 * this.#mask) return false;
    for (let slot = ((words[1] ?? 0) & this.#mask) || 1, probes = 0; probes < this.#mask; probes++) {
      const at = slot * WORDS;
      const first = Atomics.load(table, at);
      if (first === 0) {
        if (!insert) return false;
        if (Atomics.compareExchange(table, at, 0, BUSY) !== 0) continue; // lost the slot: look at it again
        for (let word = 1; word < WORDS; word++) Atomics.store(table, at + word, words[word] ?? 0);
        Atomics.store(table, at, words[0] ?? 0);
        Atomics.add(table, 0, 1);
        return true;
      }
      if (first === words[0]) {
        let same = true;
        for (let word = 1; word < WORDS && same; word++) same = Atomics.load(table, at + word) === words[word];
        if (same) return true;
      }
      slot = (slot + 1) & this.#mask || 1;
    }
    return false;
  }

  has(words: Int32Array): boolean {
    return this.#find(words, false);
  }

  add(words: Int32Array): void {
    this.#find(words, true);
  }
}

/** An image key (256 bits) as table words, the first never 0 (empty) nor BUSY; null for a key too short. */
export function keyWords(key: string): Int32Array | null {
  const digest = Buffer.from(key, 'base64');
  if (digest.byteLength < WORDS * 4) return null;
  const words = new Int32Array(WORDS);
  for (let word = 0; word < WORDS; word++) words[word] = digest.readInt32LE(word * 4);
  if (words[0] === 0 || words[0] === BUSY) words[0] = 1;
  return words;
}

/** The shared memory of a run's kept-image table, made once on the main thread and passed to every task. */
export function keptTableBuffer(rows: number): SharedArrayBuffer {
  return KeptTable.buffer(rows);
}

/**
 * Prepared images by content, so an image that repeats across rows (about one row in five in the source) is decoded
 * once. Each worker keeps its own map and tells the others over a BroadcastChannel what it prepared; a repeat that
 * races another worker is just prepared twice, with the same result. Re-encoded bytes are kept up to `maxBytes`,
 * oldest dropped first; keys of images kept as they were cost a few dozen bytes each.
 */
export class SharedImages {
  readonly #entries = new Map<string, Entry>();
  readonly #channel: BroadcastChannel;
  readonly #maxBytes: number;
  readonly #kept: KeptTable | null;
  #bytes = 0;

  constructor(channelName: string, maxBytes = 64 * 2 ** 20, kept: SharedArrayBuffer | null = null) {
    this.#maxBytes = maxBytes;
    this.#kept = kept === null ? null : new KeptTable(kept);
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
    if (entry === undefined) {
      const words = this.#kept === null ? null : keyWords(key);
      return words !== null && this.#kept?.has(words) === true ? { ok: true, bytes, reencoded: false } : undefined;
    }
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
    const words = entry.ok && entry.kept && this.#kept !== null ? keyWords(key) : null;
    if (words !== null) {
      this.#kept?.add(words); // every worker sees it now; no message needed
      return;
    }
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
