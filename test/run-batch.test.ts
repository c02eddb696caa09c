import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { convert } from '../src/convert.js';
import type { ConvertReport } from '../src/convert-report.js';
import { writeSourceFile } from '../src/source-table.js';
import type { SourceRow } from '../src/types.js';
import { makeImage, readParquet, sourceRow, tempDir } from './fixtures.js';

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
      // Small batches keep the hung batch's timeout (rows x imageTimeout) short while each image gets a generous
      // 2 s, so a slow machine does not time out a healthy row.
      writerBatchSize: 4,
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
      assert.ok((await readFile(path.join(dir, 'faulty', file))).equals(await readFile(path.join(dir, 'clean', file))), file);
    }
  });
});
