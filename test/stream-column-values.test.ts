import assert from 'node:assert/strict';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { snappyCompress } from 'hyparquet-writer/src/snappy.js';
import { makeSample } from '../src/source/make-sample.js';
import { pagesForWorkers } from '../src/read/page-range.js';
import { readColumnPages, readFooter, scanColumnPages } from '../src/parquet/read-column-pages.js';
import { SnappyFarReference, SnappyStream } from '../src/parquet/snappy-stream.js';
import { writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import { streamColumnValues } from '../src/parquet/stream-column-values.js';
import type { SourceRow } from '../src/source/source-row.js';
import { sourceRow, tempDir } from './fixtures.js';

/** Decompresses `compressed` fed in chunks of `chunk` bytes, with a window of `window` bytes. */
function decompress(compressed: Uint8Array, chunk: number, window?: number): Uint8Array {
  const pieces: Uint8Array[] = [];
  const stream = new SnappyStream((bytes) => pieces.push(bytes.slice()), window);
  for (let at = 0; at < compressed.length; at += chunk) stream.push(compressed.subarray(at, at + chunk));
  stream.end();
  return new Uint8Array(Buffer.concat(pieces));
}

/** Bytes that compress with every kind of element: literals short and long, near and overlapping copies. */
function mixedBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed;
  const random = (): number => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
  for (let at = 0; at < length; ) {
    const kind = random();
    const run = 1 + Math.floor(random() * 300);
    for (let k = 0; k < run && at < length; k++, at++) {
      if (kind < 0.4) out[at] = Math.floor(random() * 256);
      else if (kind < 0.7) out[at] = at >= 3 ? (out[at - 3] as number) : 7; // overlapping copy
      else out[at] = at >= 5000 ? (out[at - 5000] as number) : 1; // a copy from further back
    }
  }
  return out;
}

/** A raw snappy stream by hand: preamble, then the elements given. */
function stream(length: number, ...elements: number[][]): Uint8Array {
  const preamble: number[] = [];
  for (let value = length; ; value = Math.floor(value / 128)) {
    if (value < 128) {
      preamble.push(value);
      break;
    }
    preamble.push((value % 128) | 128);
  }
  return new Uint8Array([...preamble, ...elements.flat()]);
}

/** A literal of `bytes` with a 4-byte length tag (tag 63), as no compressor of small data writes it. */
function longLiteral(bytes: number[]): number[] {
  const n = bytes.length - 1;
  return [63 << 2, n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >> 24) & 255, ...bytes];
}

describe('SnappyStream', () => {
  it('decompresses what a snappy compressor wrote, the same bytes however the input is cut', () => {
    for (const [length, seed] of [
      [0, 1],
      [1, 2],
      [70_000, 3],
      [300_000, 4],
    ] as const) {
      const bytes = mixedBytes(length, seed);
      const compressed = snappyCompress(bytes);
      assert.ok(length < 1000 || compressed.length < length, 'the data has copies in it');
      for (const chunk of [1, 3, 4096, compressed.length + 1]) {
        assert.deepEqual(decompress(compressed, chunk), bytes, `length ${length}, chunks of ${chunk}`);
        assert.deepEqual(decompress(compressed, chunk, 1), bytes, `length ${length}, chunks of ${chunk}, smallest window`);
      }
    }
  });

  it('reads literals with a 4-byte length and copies with a 4-byte offset', () => {
    const text = Array.from({ length: 70 }, (_, i) => i);
    // 70 bytes of literal, then 10 bytes copied from 70 back (copy-4), then 5 from 2 back (copy-2, overlapping).
    const compressed = stream(85, longLiteral(text), [(9 << 2) | 3, 70, 0, 0, 0], [(4 << 2) | 2, 2, 0]);
    const expected = [...text, ...text.slice(0, 10), 8, 9, 8, 9, 8];
    for (const chunk of [1, 2, 5, 100]) assert.deepEqual([...decompress(compressed, chunk)], expected, `chunks of ${chunk}`);
  });

  it('says a copy reaching past its window is not streamable (SnappyFarReference), and damage is an error', () => {
    const literal = Array.from({ length: 200_000 }, (_, i) => (i * 7) & 255);
    const far = stream(200_010, longLiteral(literal), [(9 << 2) | 3, 0x40, 0x0d, 0x03, 0]); // 200,000 back
    assert.throws(() => decompress(far, 4096, 2 ** 16), SnappyFarReference);
    // With a window as large as the stream, the same copy is read.
    assert.equal(decompress(far, 4096, 2 ** 20).length, 200_010);

    assert.throws(() => decompress(stream(10, [(4 << 2) | 0, 1, 2, 3, 4, 5]), 4), /ends after 5 of the 10 bytes/);
    assert.throws(() => decompress(stream(3, [(1 << 2) | 0, 1, 2], [(1 << 2) | 2, 1, 0]), 4), /more than the 3 bytes/);
    assert.throws(() => decompress(stream(8, [(1 << 2) | 0, 1, 2], [(5 << 2) | 2, 9, 0]), 4), /before the start of the output/);
    assert.throws(() => decompress(stream(2, [(1 << 2) | 0, 1, 2], [0, 9]), 4), /data after the 2 bytes/);
  });
});

/** Every value of the image bytes column, read by hyparquet a page at a time (the reference) and by streaming. */
async function bothWays(file: string): Promise<{ reference: (Uint8Array | string | null)[]; streamed: (Uint8Array | null)[]; pages: number[]; forWorkers: boolean }> {
  const handle = await open(file, 'r');
  try {
    const footer = await readFooter(handle, (await stat(file)).size);
    const reference: (Uint8Array | string | null)[] = [];
    const streamed: (Uint8Array | null)[] = [];
    const pages: number[] = [];
    let forWorkers = true;
    for (let group = 0; group < footer.row_groups.length; group++) {
      for await (const page of readColumnPages(handle, footer, group, ['image', 'bytes'])) reference.push(...page);
      const column = await scanColumnPages(handle, footer, group, ['image', 'bytes']);
      pages.push(...column.pages.map((page) => page.rows));
      forWorkers &&= pagesForWorkers(column, 128);
      for await (const values of streamColumnValues(handle, column)) {
        for (const value of values) assert.ok(value === null || value.byteOffset + value.byteLength === value.buffer.byteLength && value.byteOffset === 0, 'each value owns its buffer');
        streamed.push(...values);
      }
    }
    return { reference, streamed, pages, forWorkers };
  } finally {
    await handle.close();
  }
}

describe('streamColumnValues', () => {
  it("reads pages as large as pyarrow's (a dictionary page of many images, then pages of hundreds) as hyparquet reads them, and they are not left to the workers", async () => {
    const dir = await tempDir();
    await makeSample({ rows: 2600, output: dir, imageSide: 64, pageBytes: 2 ** 21, repeatFraction: 0.1 });
    const { reference, streamed, pages, forWorkers } = await bothWays(path.join(dir, 'RLAIF-V-Dataset_000.parquet'));
    assert.deepEqual(pages, [1056, 992, 552], 'the rows of the dictionary, then pages of about 2 MiB');
    assert.equal(streamed.length, 2600);
    assert.deepEqual(streamed, reference);
    assert.equal(forWorkers, false);
  });

  it('gives null where a row has no image or no bytes, in large pages with definition levels', async () => {
    const dir = await tempDir();
    const rows: SourceRow[] = Array.from({ length: 2100 }, (_, i) => {
      const bytes = new Uint8Array(300 + ((i * 53) % 900)).map((_, k) => (i * 31 + k * 13) & 255);
      return sourceRow(i, i % 37 === 5 ? null : { bytes: i % 41 === 7 ? null : bytes, path: i % 3 === 0 ? `p${i}.jpg` : null });
    });
    const file = path.join(dir, 'levels.parquet');
    await writeSourceFile(file, rows, undefined, 2 ** 21);
    const { reference, streamed } = await bothWays(file);
    assert.equal(streamed.filter((value) => value === null).length, rows.filter((row) => row.image?.bytes == null).length);
    assert.deepEqual(streamed, reference);
  });

  it('leaves pages of about 1 MiB to the workers', async () => {
    const dir = await tempDir();
    await makeSample({ rows: 600, output: dir, imageSide: 256, repeatFraction: 0 });
    const { reference, streamed, forWorkers } = await bothWays(path.join(dir, 'RLAIF-V-Dataset_000.parquet'));
    assert.deepEqual(streamed, reference);
    assert.equal(forWorkers, true);
  });
});
