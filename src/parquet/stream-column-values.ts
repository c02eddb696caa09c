import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { DecodedArray } from 'hyparquet/src/types.js';
import { decodeDataPage, decodeDictionaryPage, decodeIndexPage, usesDictionary, type ColumnPages, type ColumnSpec, type PageRef } from './read-column-pages.js';
import { decodeLevels, PageBody, PlainValues, RowOrder, type Sink, type Value } from './page-body.js';
import { SnappyFarReference, SnappyStream } from './snappy-stream.js';

/** Compressed bytes read at a time, into one buffer reused for the whole column. */
const CHUNK_BYTES = 4 * 2 ** 20;
/** Compressed bytes decoded at a time. */
const SLICE_BYTES = 256 * 1024;

/** Whether a data page can be streamed here: PLAIN values, uncompressed or snappy, levels as RLE, nothing repeated. */
function streamable(spec: ColumnSpec, ref: PageRef): boolean {
  const { header } = ref;
  const codec = spec.decoder.codec;
  if (codec !== 'UNCOMPRESSED' && codec !== 'SNAPPY') return false;
  if (spec.decoder.schemaPath.some((node) => node.element.repetition_type === 'REPEATED')) return false;
  if (header.type === 'DATA_PAGE') {
    const page = header.data_page_header;
    return page?.encoding === 'PLAIN' && (spec.maxDefinition === 0 || page.definition_level_encoding === 'RLE');
  }
  if (header.type === 'DATA_PAGE_V2') return header.data_page_header_v2?.encoding === 'PLAIN';
  return header.type === 'DICTIONARY_PAGE' && (header.dictionary_page_header?.encoding ?? 'PLAIN').startsWith('PLAIN');
}

/**
 * The bytes of the file from `offset` for `length`, read a chunk at a time into `buffer` (reused), and given in slices
 * of SLICE_BYTES: what is decoded ahead of the rows that need it is at most a slice's worth.
 */
async function* chunks(file: FileHandle, offset: number, length: number, buffer: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let done = 0; done < length; ) {
    const want = Math.min(buffer.length, length - done);
    // Read synchronously: a chunk is a copy from the page cache, a millisecond or two, and a thread-pool round trip a
    // chunk cost more CPU than it saved (the reader waits for the bytes either way).
    const bytesRead = readSync(file.fd, buffer, 0, want, offset + done);
    if (bytesRead === 0) throw new Error(`the file ends inside the page at byte ${offset}`);
    for (let at = 0; at < bytesRead; at += SLICE_BYTES) yield buffer.subarray(at, Math.min(bytesRead, at + SLICE_BYTES));
    done += bytesRead;
  }
}

/** `sink` behind the column's codec: snappy decompressed as it streams, or passed through. */
function decompressing(spec: ColumnSpec, sink: Sink, expected: number): Sink {
  if (spec.decoder.codec !== 'SNAPPY') return sink;
  const snappy = new SnappyStream((bytes) => sink.push(bytes), 2 ** 20);
  return {
    push: (bytes) => snappy.push(bytes),
    end: () => {
      snappy.end();
      if (snappy.expected !== expected) throw new Error(`the page decompresses to ${snappy.expected} bytes, its header says ${expected}`);
      sink.end();
    },
  };
}

async function readWhole(file: FileHandle, ref: PageRef): Promise<Uint8Array> {
  const data = new Uint8Array(ref.compressedSize);
  for (let done = 0; done < data.length; ) {
    const { bytesRead } = await file.read(data, done, data.length - done, ref.offset + done);
    if (bytesRead === 0) throw new Error(`the file ends inside the page at byte ${ref.offset}`);
    done += bytesRead;
  }
  return data;
}

/**
 * Streams one data page: yields its values in row order as each chunk of the file is decoded (`out` is filled by the
 * sink made for it).
 */
async function* streamDataPage(file: FileHandle, spec: ColumnSpec, ref: PageRef, buffer: Uint8Array): AsyncGenerator<Value[]> {
  const { header } = ref;
  const uncompressed = header.uncompressed_page_size;
  const out: Value[] = [];
  let sink: Sink;
  let from = ref.offset;
  if (header.type === 'DATA_PAGE') {
    sink = decompressing(spec, new PageBody(ref.rows, spec, uncompressed, out), uncompressed);
  } else {
    // Data page v2: levels first, never compressed; then the values, compressed unless the header says otherwise.
    const v2 = header.data_page_header_v2;
    if (v2 === undefined) throw new Error('a data page v2 without its header');
    const levelsLength = v2.repetition_levels_byte_length + v2.definition_levels_byte_length;
    if (levelsLength > ref.compressedSize || levelsLength > uncompressed) throw new Error('levels longer than their page');
    const levelBytes = new Uint8Array(levelsLength);
    if (levelsLength > 0) await file.read(levelBytes, 0, levelsLength, ref.offset);
    const levels = spec.maxDefinition === 0 ? null : decodeLevels(levelBytes.subarray(v2.repetition_levels_byte_length), ref.rows, spec.maxDefinition);
    const order = new RowOrder(out, levels, spec.maxDefinition);
    const values = new PlainValues(v2.num_values - v2.num_nulls, uncompressed - levelsLength, (value) => order.value(value));
    const plain: Sink = {
      push: (bytes) => values.push(bytes),
      end: () => {
        values.end();
        order.end();
      },
    };
    sink = v2.is_compressed === false ? plain : decompressing(spec, plain, uncompressed - levelsLength);
    from += levelsLength;
  }
  for await (const chunk of chunks(file, from, ref.offset + ref.compressedSize - from, buffer)) {
    sink.push(chunk);
    if (out.length > 0) yield out.splice(0);
  }
  sink.end();
  if (out.length > 0) yield out.splice(0);
}

/** A page's values decoded whole (its encoding or codec does not stream), each copied into a buffer of its own. */
async function wholePage(file: FileHandle, spec: ColumnSpec, ref: PageRef): Promise<Value[]> {
  const values = decodeDataPage(spec, ref, await readWhole(file, ref), undefined);
  return values.map((value) => (value instanceof Uint8Array ? value.slice() : null));
}

/**
 * A dictionary page read as its entries are first needed, each entry let go after its last use. A dictionary's
 * entries are numbered in the order of their first use, so rows read in order need the next entry or one already
 * read: the page is decoded as the rows come. When each entry is last used is found beforehand from the index pages
 * (a few bits a row). A dictionary of images used once each (pyarrow's first 1,024 images, 150 MB) is then never held
 * whole; repeated images are held from their first row to their last.
 */
class LazyDictionary {
  readonly #file: FileHandle;
  readonly #spec: ColumnSpec;
  readonly #ref: PageRef;
  readonly #lastUse: Int32Array;
  readonly #onHeld: (delta: number) => void;
  readonly #entries: (Uint8Array | undefined)[] = [];
  readonly #chunks: AsyncGenerator<Uint8Array>;
  readonly #sink: Sink;
  #decoded = 0;
  #held = 0;
  /** The whole dictionary, when its page could not be streamed (see SnappyFarReference). */
  #whole: DecodedArray | null = null;

  constructor(file: FileHandle, spec: ColumnSpec, ref: PageRef, lastUse: Int32Array, onHeld: (delta: number) => void) {
    this.#file = file;
    this.#spec = spec;
    this.#ref = ref;
    this.#lastUse = lastUse;
    this.#onHeld = onHeld;
    this.#chunks = chunks(file, ref.offset, ref.compressedSize, new Uint8Array(CHUNK_BYTES));
    const uncompressed = ref.header.uncompressed_page_size;
    this.#sink = decompressing(spec, new PlainValues(lastUse.length, uncompressed, (value) => this.#add(value)), uncompressed);
  }

  #add(value: Uint8Array): void {
    const entry = this.#decoded++;
    if ((this.#lastUse[entry] ?? -1) < 0) return; // no row uses it
    this.#entries[entry] = value;
    this.#hold(value.byteLength);
  }

  #hold(bytes: number): void {
    this.#held += bytes;
    this.#onHeld(bytes);
  }

  /** Entry `entry` for row `row`: the entry itself at its last use, else a copy. */
  async get(entry: number, row: number): Promise<Uint8Array> {
    if (this.#whole === null && !streamable(this.#spec, this.#ref)) await this.#decodeWhole();
    if (this.#whole === null) {
      try {
        while (this.#decoded <= entry) {
          const next = await this.#chunks.next();
          if (next.done === true) {
            this.#sink.end();
            throw new Error(`the dictionary page ended before entry ${entry}`);
          }
          this.#sink.push(next.value);
        }
      } catch (error) {
        if (!(error instanceof SnappyFarReference)) throw error;
        await this.#decodeWhole();
      }
    }
    if (this.#whole !== null) {
      const value = this.#whole[entry];
      if (!(value instanceof Uint8Array)) throw new Error(`no dictionary entry ${entry}`);
      return value.slice();
    }
    const value = this.#entries[entry];
    if (value === undefined) throw new Error(`dictionary entry ${entry} is used again after its last use`);
    if (this.#lastUse[entry] !== row) return value.slice();
    this.#entries[entry] = undefined;
    this.#hold(-value.byteLength);
    return value;
  }

  /** Decodes the page whole, where it cannot be streamed; its entries are then copied at every use. */
  async #decodeWhole(): Promise<void> {
    this.release();
    this.#whole = decodeDictionaryPage(this.#spec, this.#ref, await readWhole(this.#file, this.#ref)) ?? [];
    this.#hold(this.#ref.header.uncompressed_page_size);
  }

  /** Lets go of whatever is held. */
  release(): void {
    this.#entries.length = 0;
    this.#whole = null;
    this.#hold(-this.#held);
  }
}

/** The indexes of every dictionary-encoded page (by page), and each dictionary entry's last row (-1: none). */
async function indexesOf(file: FileHandle, pages: ColumnPages, size: number): Promise<{ byPage: Map<number, (number | null)[]>; lastUse: Int32Array }> {
  const byPage = new Map<number, (number | null)[]>();
  const lastUse = new Int32Array(size).fill(-1);
  let row = 0;
  for (const [index, ref] of pages.pages.entries()) {
    if (usesDictionary(ref)) {
      const entries = decodeIndexPage(pages.spec, ref, await readWhole(file, ref), size);
      byPage.set(index, entries);
      for (const [at, entry] of entries.entries()) if (entry !== null) lastUse[entry] = row + at;
    }
    row += ref.rows;
  }
  return { byPage, lastUse };
}

/**
 * Reads a byte-array column chunk (its pages listed by `scanColumnPages`) once, front to back, yielding its values in
 * row order as they are decoded, each in a buffer of its own; null where a row has none. Memory stays at a few MiB
 * however large the pages (pyarrow writes 1,024 images a page, and a dictionary page of as many): plain pages,
 * uncompressed or snappy, are decompressed and parsed as they are read, and the dictionary page as its entries are
 * first used (see LazyDictionary); pages in other encodings or codecs are decoded whole, one at a time.
 *
 * @param onHeld told of what the dictionary holds (bytes more, or fewer when negative), for the run's memory budget.
 * @throws {Error} when a page does not decode or holds other than its header says.
 */
export async function* streamColumnValues(file: FileHandle, pages: ColumnPages, onHeld: (delta: number) => void = () => undefined): AsyncGenerator<Value[]> {
  const { spec } = pages;
  const buffer = new Uint8Array(CHUNK_BYTES);
  const size = pages.dictionary?.header.dictionary_page_header?.num_values ?? 0;
  const indexes = pages.dictionary === null ? null : await indexesOf(file, pages, size);
  const dictionary = pages.dictionary === null || indexes === null ? null : new LazyDictionary(file, spec, pages.dictionary, indexes.lastUse, onHeld);
  try {
    let row = 0;
    for (const [index, ref] of pages.pages.entries()) {
      const entries = indexes?.byPage.get(index);
      let given = 0;
      if (entries !== undefined && dictionary !== null) {
        // Given as they are taken from the dictionary, a slice's worth at most: the reader holds little ahead.
        let out: Value[] = [];
        let held = 0;
        for (const entry of entries) {
          const value = entry === null ? null : await dictionary.get(entry, row + given);
          out.push(value);
          held += value?.byteLength ?? 0;
          given++;
          if (held >= SLICE_BYTES || out.length === 64) {
            yield out;
            out = [];
            held = 0;
          }
        }
        if (out.length > 0) yield out;
      } else if (streamable(spec, ref)) {
        try {
          for await (const values of streamDataPage(file, spec, ref, buffer)) {
            given += values.length;
            yield values;
          }
        } catch (error) {
          // A copy reaching back past the window: not damage, only not streamable. The page is decoded whole, and the
          // values not yet given are given from that.
          if (!(error instanceof SnappyFarReference)) throw error;
          const rest = (await wholePage(file, spec, ref)).slice(given);
          given += rest.length;
          yield rest;
        }
      } else {
        const values = await wholePage(file, spec, ref);
        given = values.length;
        yield values;
      }
      if (given !== ref.rows) throw new Error(`a page held ${given} values, its header says ${ref.rows}`);
      row += ref.rows;
    }
  } finally {
    dictionary?.release();
  }
}
