/**
 * A raw snappy decompressor that takes its input in chunks and gives its output in pieces, holding only a window of
 * what it has written: a page of a parquet column (pyarrow writes pages of 1,024 images, 150 MB and more) can be
 * decompressed without holding it whole, compressed or not.
 *
 * Snappy's copies refer back into the output. Every known compressor (Google's, and those that follow it) compresses
 * in blocks of 64 KiB and never refers across one, so a window of 64 KiB of history is enough; a stream that refers
 * further back is not wrong, only not streamable here: {@link SnappyFarReference} says so, and the caller decodes
 * that page whole instead.
 */

/** History kept for copies: snappy's block size. */
const HISTORY = 64 * 1024;

/** Thrown when a copy reaches back past the window: decode the stream whole instead. */
export class SnappyFarReference extends Error {
  constructor(offset: number) {
    super(`a snappy copy reaches ${offset} bytes back, past the ${HISTORY} this decoder keeps`);
    this.name = 'SnappyFarReference';
  }
}

type State = 'length' | 'tag' | 'literal' | 'done';

export class SnappyStream {
  /** Output not yet handed on, after `HISTORY` bytes (at most) already handed on. */
  readonly #out: Uint8Array;
  readonly #emit: (bytes: Uint8Array) => void;
  #pos = 0;
  #flushed = 0;
  /** Bytes of output the preamble announced, and written so far. */
  #expected = -1;
  #written = 0;
  #state: State = 'length';
  /** The preamble varint so far. */
  #shift = 0;
  #length = 0;
  /** A tag and its extra bytes, when they straddle two chunks. */
  readonly #carry = new Uint8Array(5);
  #carried = 0;
  #literalLeft = 0;

  /**
   * @param emit receives the output in order; each piece is a view valid only during the call (copy what you keep).
   * @param windowBytes output gathered before it is handed on (at least 1 MiB is best).
   */
  constructor(emit: (bytes: Uint8Array) => void, windowBytes = 4 * 2 ** 20) {
    this.#emit = emit;
    this.#out = new Uint8Array(HISTORY + Math.max(HISTORY, windowBytes));
  }

  /** Output bytes the stream says it holds (-1 before its preamble is read). */
  get expected(): number {
    return this.#expected;
  }

  /** Decompresses a chunk of input; output is handed on as it fills the window, and at the end of the chunk. */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      switch (this.#state) {
        case 'length': {
          const byte = chunk[at++] as number;
          this.#length += (byte & 0x7f) * 2 ** this.#shift;
          this.#shift += 7;
          if (byte < 0x80) {
            this.#expected = this.#length;
            this.#state = this.#expected === 0 ? 'done' : 'tag';
          } else if (this.#shift > 28) {
            throw new Error('snappy: the length preamble is too long');
          }
          break;
        }
        case 'tag':
          at = this.#tag(chunk, at);
          break;
        case 'literal': {
          const take = Math.min(this.#literalLeft, chunk.length - at);
          this.#write(chunk.subarray(at, at + take));
          at += take;
          this.#literalLeft -= take;
          if (this.#literalLeft === 0) this.#next();
          break;
        }
        case 'done':
          throw new Error(`snappy: data after the ${this.#expected} bytes the stream announced`);
      }
    }
    this.#flush();
  }

  /** Checks the stream ended where its preamble said it would. */
  end(): void {
    if (this.#state !== 'done') {
      throw new Error(`snappy: the stream ends after ${this.#written} of the ${Math.max(0, this.#expected)} bytes it announced`);
    }
  }

  /** Reads one element's tag (and its extra bytes) from `chunk` at `at`; returns where the next element starts. */
  #tag(chunk: Uint8Array, at: number): number {
    const first = this.#carried > 0 ? (this.#carry[0] as number) : (chunk[at] as number);
    const kind = first & 3;
    const extra = kind === 0 ? (first >> 2 < 60 ? 0 : (first >> 2) - 59) : kind === 1 ? 1 : kind === 2 ? 2 : 4;
    let tag: Uint8Array;
    if (this.#carried === 0 && at + 1 + extra <= chunk.length) {
      tag = chunk.subarray(at, at + 1 + extra);
      at += 1 + extra;
    } else {
      while (this.#carried < 1 + extra && at < chunk.length) this.#carry[this.#carried++] = chunk[at++] as number;
      if (this.#carried < 1 + extra) return at; // the rest of the tag comes with the next chunk
      tag = this.#carry.subarray(0, 1 + extra);
      this.#carried = 0;
    }
    const value = (index: number): number => tag[index] as number;
    if (kind === 0) {
      let length = first >> 2;
      if (length >= 60) {
        length = 0;
        for (let byte = extra; byte >= 1; byte--) length = length * 256 + value(byte);
      }
      this.#literalLeft = length + 1;
      this.#state = 'literal';
      return at;
    }
    let length: number;
    let offset: number;
    if (kind === 1) {
      length = 4 + ((first >> 2) & 7);
      offset = ((first >> 5) << 8) | value(1);
    } else if (kind === 2) {
      length = (first >> 2) + 1;
      offset = value(1) | (value(2) << 8);
    } else {
      length = (first >> 2) + 1;
      offset = (value(1) | (value(2) << 8) | (value(3) << 16)) + value(4) * 2 ** 24;
    }
    this.#copy(offset, length);
    this.#next();
    return at;
  }

  #next(): void {
    this.#state = this.#written === this.#expected ? 'done' : 'tag';
  }

  #checkRoom(length: number): void {
    if (this.#written + length > this.#expected) {
      throw new Error(`snappy: the data holds more than the ${this.#expected} bytes the stream announced`);
    }
  }

  /** Makes room for `length` more bytes: hands on what is pending and keeps the last HISTORY bytes. */
  #room(length: number): void {
    if (this.#pos + length <= this.#out.length) return;
    this.#flush();
    const keep = Math.min(HISTORY, this.#pos);
    this.#out.copyWithin(0, this.#pos - keep, this.#pos);
    this.#pos = keep;
    this.#flushed = keep;
  }

  #write(bytes: Uint8Array): void {
    this.#checkRoom(bytes.length);
    for (let at = 0; at < bytes.length; ) {
      this.#room(1);
      const take = Math.min(bytes.length - at, this.#out.length - this.#pos);
      this.#out.set(bytes.subarray(at, at + take), this.#pos);
      this.#pos += take;
      at += take;
      this.#written += take;
    }
  }

  #copy(offset: number, length: number): void {
    this.#checkRoom(length);
    if (offset === 0 || offset > this.#written) throw new Error(`snappy: a copy from ${offset} bytes back, before the start of the output`);
    this.#room(length);
    if (offset > this.#pos) throw new SnappyFarReference(offset);
    const out = this.#out;
    let from = this.#pos - offset;
    if (offset >= length) {
      out.copyWithin(this.#pos, from, from + length);
      this.#pos += length;
    } else {
      // Overlapping: a run that repeats its last `offset` bytes.
      for (let left = length; left > 0; left--) out[this.#pos++] = out[from++] as number;
    }
    this.#written += length;
  }

  #flush(): void {
    if (this.#pos > this.#flushed) {
      const piece = this.#out.subarray(this.#flushed, this.#pos);
      this.#flushed = this.#pos;
      this.#emit(piece);
    }
  }
}
