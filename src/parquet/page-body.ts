import { readRleBitPackedHybrid } from 'hyparquet/src/encoding.js';
import type { ColumnSpec } from './read-column-pages.js';

/**
 * The bodies of parquet pages parsed as they stream in, a piece at a time: PLAIN byte-array values (each copied into a
 * buffer of its own), RLE definition levels, and rows put in order with their nulls. What stream-column-values feeds
 * with the bytes it reads and decompresses.
 */

/** A row's value: its bytes, or null where it has none. */
export type Value = Uint8Array | null;

/** A consumer of a byte stream, fed in pieces (views valid only during the call). */
export interface Sink {
  push(bytes: Uint8Array): void;
  end(): void;
}

/**
 * PLAIN byte-array values (a 4-byte little-endian length, then the bytes) parsed from a stream: each value copied into
 * a buffer of its own, which is what lets a batch transfer its images without dragging a page along.
 */
export class PlainValues implements Sink {
  readonly #onValue: (value: Uint8Array) => void;
  #left: number;
  #bytesLeft: number;
  readonly #length = new Uint8Array(4);
  #lengthHave = 0;
  #value: Uint8Array | null = null;
  #valueHave = 0;

  /** `count` values in at most `maxBytes` bytes (a length past them is damage, not a reason to allocate). */
  constructor(count: number, maxBytes: number, onValue: (value: Uint8Array) => void) {
    this.#left = count;
    this.#bytesLeft = maxBytes;
    this.#onValue = onValue;
  }

  push(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; ) {
      if (this.#value === null) {
        if (this.#left === 0) return; // padding after the last value is allowed
        const take = Math.min(4 - this.#lengthHave, bytes.length - at);
        this.#length.set(bytes.subarray(at, at + take), this.#lengthHave);
        this.#lengthHave += take;
        at += take;
        if (this.#lengthHave < 4) return;
        const length = new DataView(this.#length.buffer).getUint32(0, true);
        this.#bytesLeft -= 4;
        if (length > this.#bytesLeft) throw new Error(`a value of ${length} bytes, past the end of its page`);
        this.#bytesLeft -= length;
        this.#lengthHave = 0;
        this.#value = new Uint8Array(length);
        this.#valueHave = 0;
      }
      const take = Math.min(this.#value.length - this.#valueHave, bytes.length - at);
      this.#value.set(bytes.subarray(at, at + take), this.#valueHave);
      this.#valueHave += take;
      at += take;
      if (this.#valueHave === this.#value.length) {
        const value = this.#value;
        this.#value = null;
        this.#left--;
        this.#onValue(value);
      }
    }
  }

  end(): void {
    if (this.#left > 0 || this.#value !== null) throw new Error(`the page ends ${this.#left} value(s) short`);
  }
}

/** Bit width of levels up to `max`. */
function bitWidth(max: number): number {
  return max === 0 ? 0 : 32 - Math.clz32(max);
}

/** Definition levels decoded from their RLE / bit-packed hybrid bytes. */
export function decodeLevels(bytes: Uint8Array, count: number, maxDefinition: number): number[] {
  const levels = new Array<number>(count);
  readRleBitPackedHybrid({ view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: 0 }, bitWidth(maxDefinition), levels, bytes.length);
  return levels;
}

/** Puts values in row order: null where a row's definition level says it has none. */
export class RowOrder {
  readonly #out: Value[];
  readonly #levels: number[] | null;
  readonly #max: number;
  #row = 0;

  constructor(out: Value[], levels: number[] | null, max: number) {
    this.#out = out;
    this.#levels = levels;
    this.#max = max;
  }

  #nulls(): void {
    const levels = this.#levels;
    if (levels === null) return;
    while (this.#row < levels.length && levels[this.#row] !== this.#max) {
      this.#out.push(null);
      this.#row++;
    }
  }

  value(value: Uint8Array): void {
    this.#nulls();
    this.#out.push(value);
    this.#row++;
  }

  end(): void {
    this.#nulls();
  }
}

/**
 * A data page v1's body (definition levels with their 4-byte length, then PLAIN values), parsed as it streams. Levels
 * are gathered whole first (a few bytes a row), then the values.
 */
export class PageBody implements Sink {
  readonly #rows: number;
  readonly #spec: ColumnSpec;
  readonly #out: Value[];
  #maxBytes: number;
  #levelBytes: Uint8Array | null = null;
  #levelHave = 0;
  readonly #lengthBytes = new Uint8Array(4);
  #lengthHave = 0;
  #values: PlainValues | null = null;
  #order: RowOrder | null = null;

  constructor(rows: number, spec: ColumnSpec, maxBytes: number, out: Value[]) {
    this.#rows = rows;
    this.#spec = spec;
    this.#maxBytes = maxBytes;
    this.#out = out;
    if (spec.maxDefinition === 0) this.#startValues(null);
  }

  #startValues(levels: number[] | null): void {
    const present = levels === null ? this.#rows : levels.filter((level) => level === this.#spec.maxDefinition).length;
    const order = new RowOrder(this.#out, levels, this.#spec.maxDefinition);
    this.#order = order;
    this.#values = new PlainValues(present, this.#maxBytes, (value) => order.value(value));
  }

  push(bytes: Uint8Array): void {
    let at = 0;
    if (this.#values === null && this.#levelBytes === null) {
      const take = Math.min(4 - this.#lengthHave, bytes.length);
      this.#lengthBytes.set(bytes.subarray(0, take), this.#lengthHave);
      this.#lengthHave += take;
      at = take;
      if (this.#lengthHave < 4) return;
      const length = new DataView(this.#lengthBytes.buffer).getUint32(0, true);
      if (length + 4 > this.#maxBytes) throw new Error(`definition levels of ${length} bytes, past the end of their page`);
      this.#maxBytes -= length + 4;
      this.#levelBytes = new Uint8Array(length);
    }
    if (this.#values === null && this.#levelBytes !== null) {
      const take = Math.min(this.#levelBytes.length - this.#levelHave, bytes.length - at);
      this.#levelBytes.set(bytes.subarray(at, at + take), this.#levelHave);
      this.#levelHave += take;
      at += take;
      if (this.#levelHave < this.#levelBytes.length) return;
      this.#startValues(decodeLevels(this.#levelBytes, this.#rows, this.#spec.maxDefinition));
    }
    this.#values?.push(bytes.subarray(at));
  }

  end(): void {
    if (this.#values === null || this.#order === null) throw new Error('the page ends inside its definition levels');
    this.#values.end();
    this.#order.end();
  }
}
