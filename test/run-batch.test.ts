import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Piscina } from 'piscina';
import { convert } from '../src/run/convert.js';
import { RlaifError } from '../src/errors.js';
import type { ConvertReport } from '../src/run/convert-report.js';
import { writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import { runWatched } from '../src/work/run-batch.js';
import type { ConvertResult, ConvertTask } from '../src/work/protocol.js';
import type { SourceRow } from '../src/source/source-row.js';
import { beat } from '../src/work/protocol.js';
import { makeImage, outputFile, readParquet, sourceRow, tempDir } from './fixtures.js';

const FAULTY_WORKER = pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'faulty-worker.js'));

describe('a worker that crashes or hangs does not sink the run', () => {
  let input: string;
  let dir: string;
  let faulty: ConvertReport;

  before(async () => {
    dir = await tempDir();
    const rows: SourceRow[] = [];
    for (let i = 0; i < 40; i++) rows.push(sourceRow(i, { bytes: await makeImage(20 + i, 20), path: `${i}.jpg` }));
    const marker = (text: string) => ({ bytes: new TextEncoder().encode(text), path: null });
    rows[5] = sourceRow(5, marker('CRASH-WORKER'));
    rows[22] = sourceRow(22, marker('HANG-WORKER'));
    input = path.join(dir, 'input.parquet');
    await writeSourceFile(input, rows);
    faulty = await convert({
      input: [input],
      output: path.join(dir, 'faulty'),
      // Each image gets a generous 2 s, so a slow machine does not time out a healthy row; the hung batch is stopped
      // 2 s after its worker last moved on, however many rows it has.
      writerBatchSize: 16,
      numProc: 2,
      imageTimeout: 2,
      maxRejectFraction: 1,
      workerUrl: FAULTY_WORKER,
      streamRowGroupBytes: 1, // images read page by page, so a retry reads pages again
    });
  });

  it('retries the batch, then row by row, and rejects only the rows that killed or hung a worker', async () => {
    assert.equal(faulty.input.rows, 40);
    assert.equal(faulty.output.rows, 38);
    assert.deepEqual(faulty.rejected.byCode, { image_timeout: 1, worker_failed: 1 });
    const { table } = await readParquet(path.join(dir, 'faulty', 'rejects', 'rejects.parquet'));
    const rejected = Array.from({ length: table.numRows }, (_, i) => table.get(i)?.toJSON() as Record<string, unknown>);
    assert.deepEqual(
      rejected.map((row) => [Number(row.row_index), row.error_code, row.idx]),
      [
        [5, 'worker_failed', '5'],
        [22, 'image_timeout', '22'],
      ],
    );
  });

  it('writes every other row exactly as a run whose workers never failed', async () => {
    // With the real worker the two marker rows are rejected as unsupported images: the same rows out, so the same bytes.
    const clean = await convert({ input: [input], output: path.join(dir, 'clean'), writerBatchSize: 16, maxRejectFraction: 1 });
    assert.deepEqual(clean.rejected.byCode, { unsupported_image: 2 });
    for (const file of ['README.md', ...(faulty.output.splits.train?.files ?? []).map((shard) => shard.file)]) {
      assert.ok((await outputFile(path.join(dir, 'faulty'), file)).equals(await outputFile(path.join(dir, 'clean'), file)), file);
    }
  });
});

describe('--on-bad-image fail', () => {
  it('names a worker that died on a row for what it was, not a bad image', async () => {
    const dir = await tempDir();
    const rows: SourceRow[] = [];
    for (let i = 0; i < 6; i++) rows.push(sourceRow(i, { bytes: await makeImage(20 + i, 20), path: `${i}.jpg` }));
    rows[3] = sourceRow(3, { bytes: new TextEncoder().encode('CRASH-WORKER'), path: null });
    const input = path.join(dir, 'input.parquet');
    await writeSourceFile(input, rows);
    await assert.rejects(
      convert({ input: [input], output: path.join(dir, 'out'), numProc: 1, onBadImage: 'fail', workerUrl: FAULTY_WORKER }),
      (error: unknown) =>
        error instanceof RlaifError && error.code === 'ERR_WORKER_FAILED' && /^Row 3 \(idx "3"\): the worker died on this row: .*, twice/.test(error.message),
    );
  });
});

describe('the image timeout', () => {
  /** A stand-in pool whose worker beats `beats` times, `everyMs` apart, then either finishes or hangs. */
  function pool(beats: number, everyMs: number, hangs: boolean): Piscina<ConvertTask, ConvertResult> {
    const run = (task: ConvertTask, options: { signal?: AbortSignal }): Promise<ConvertResult> =>
      new Promise((resolve, reject) => {
        options.signal?.addEventListener('abort', () => reject(options.signal?.reason));
        let beaten = 0;
        const timer = setInterval(() => {
          if (beaten++ < beats) beat(task);
          else if (!hangs) {
            clearInterval(timer);
            resolve({ seq: task.seq } as ConvertResult);
          }
        }, everyMs);
        options.signal?.addEventListener('abort', () => clearInterval(timer));
      });
    return { run } as unknown as Piscina<ConvertTask, ConvertResult>;
  }
  const task = { seq: 7 } as ConvertTask;

  it('bounds one image, not the batch: a worker that stops moving on is stopped, one that keeps going is not', { timeout: 30_000 }, async () => {
    // 40 images at 25 ms each take a second, ten times the timeout: that is fine while each one is quick.
    assert.equal((await runWatched(pool(40, 25, false), task, [], 100)).seq, 7);
    // Two images, then a hang: stopped about 100 ms after the last heartbeat (under the old rows x timeout rule, a
    // 1,000-row batch would have waited 100 s: longer than this test may take).
    await assert.rejects(runWatched(pool(2, 25, true), task, [], 100), (error: unknown) => error instanceof DOMException && error.name === 'TimeoutError');
  });
});
