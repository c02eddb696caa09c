import assert from 'node:assert/strict';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { convert } from '../../src/run/convert.js';
import { finalize } from '../../src/run/finalize.js';
import { readFooter, scanColumnPages } from '../../src/parquet/read-column-pages.js';
import { BytesInFlight } from '../../src/run/bytes-in-flight.js';
import { assertSameFiles, filesOf, sampleDir, tempDir } from '../support/fixtures.js';

/** The data files of an output (the card names the input files, which differ between layouts). */
async function dataOf(dir: string): Promise<Map<string, Buffer>> {
  return new Map([...(await filesOf(dir))].filter(([name]) => name.startsWith('data') || name.startsWith('rejects')));
}

/** The largest page of the image column in a sample file, compressed. */
async function largestPage(file: string): Promise<number> {
  const handle = await open(file, 'r');
  try {
    const column = await scanColumnPages(handle, await readFooter(handle, (await stat(file)).size), 0, ['image', 'bytes']);
    return Math.max(...[column.dictionary, ...column.pages].map((page) => page?.compressedSize ?? 0));
  } finally {
    await handle.close();
  }
}

describe('BytesInFlight', () => {
  it('counts what the reader holds and what the writer holds, and keeps the peak', () => {
    let writer = 0;
    const memory = new BytesInFlight(100, () => writer);
    memory.add(30);
    memory.add(40);
    assert.equal(memory.held(), 70);
    memory.release(30);
    writer = 50;
    memory.observe();
    assert.equal(memory.held(), 90);
    assert.equal(memory.peak, 90);
    writer = 0;
    memory.release(40);
    assert.equal(memory.held(), 0);
    assert.equal(memory.peak, 90);
  });
});

describe("a source in pages as large as pyarrow's (1,024 images a page)", () => {
  let small: string;
  let pyarrow: string;
  let expected: Map<string, Buffer>;
  let pageBytes: number;

  before(async () => {
    // The same rows, twice: pages of about 1 MiB, and of up to 32 MiB (here, one page and its dictionary a file).
    small = await sampleDir(1400, { files: 2, seed: 9 });
    pyarrow = await sampleDir(1400, { files: 2, seed: 9, pageBytes: 2 ** 25 });
    const out = path.join(await tempDir(), 'out');
    await convert({ input: [small], output: out, numProc: 2, cache: false });
    expected = await dataOf(out);
    const names = (await readdir(pyarrow)).filter((name) => name.endsWith('.parquet'));
    pageBytes = Math.max(...(await Promise.all(names.map((name) => largestPage(path.join(pyarrow, name))))));
  });

  it('converts to the same bytes, each page read once, with no more image data in flight than the budget, which is less than a page', async () => {
    const budget = Math.floor(pageBytes / 3);
    for (const writerBatchSize of [4, 128]) {
      const out = path.join(await tempDir(), 'out');
      const report = await convert({ input: [pyarrow], output: out, numProc: 2, cache: false, writerBatchSize, maxBytesInFlight: budget });
      assertSameFiles(await dataOf(out), expected, `pyarrow pages, batches of ${writerBatchSize}`);
      assert.equal(report.memory?.maxBytesInFlight, budget);
      // The reader may decode a slice (256 KiB) of a page ahead of the batch it fills: that much over, never a page.
      const peak = report.memory?.peakBytesInFlight ?? Infinity;
      assert.ok(peak <= budget + 2 ** 19, `peak ${peak} of a budget of ${budget} (a page is ${pageBytes})`);
      assert.ok((report.memory?.peakBytesInFlight ?? 0) > 0);
    }
  });

  it('reads a part that starts inside a page (the rows before it passed over), and the parts make the same bytes', async () => {
    const out = path.join(await tempDir(), 'out');
    for (let index = 0; index < 3; index++) await convert({ input: [pyarrow], output: out, numProc: 2, cache: false, numShards: 3, shardIndex: index });
    await finalize({ output: out });
    assertSameFiles(await dataOf(out), expected, 'pyarrow pages, in 3 parts');
  });

  it('has a default budget of 64 MiB a worker and 128 MiB more', async () => {
    const out = path.join(await tempDir(), 'out');
    const report = await convert({ input: [pyarrow], output: out, numProc: 3, cache: false });
    assert.equal(report.memory?.maxBytesInFlight, 3 * 64 * 2 ** 20 + 128 * 2 ** 20);
  });
});
