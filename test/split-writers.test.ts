import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { OutputError } from '../src/errors.js';
import { outputArrowSchemaValue } from '../src/output/output-schema.js';
import { WriterThread } from '../src/write/writer-thread.js';
import { toConversational } from '../src/output/to-conversational.js';
import type { SplitPart } from '../src/write/encode-split.js';
import { SplitWriter, type SplitWriterOptions, type WrittenSplit } from '../src/write/split-writer.js';
import { encodeSplit } from '../src/write/encode-split.js';
import { readParquet, tempDir } from './fixtures.js';

/** Parts of `size` rows whose images share one buffer per part, as a worker's pages do. */
function parts(count: number, size: number, seed: number): SplitPart[] {
  const result: SplitPart[] = [];
  for (let start = 0; start < count; start += size) {
    const n = Math.min(size, count - start);
    const page = new Uint8Array(n * 400).map((_, k) => (k * 7 + seed) & 255);
    const rows = Array.from({ length: n }, (_, i) =>
      toConversational(`q${start + i}`, `c${start + i}`, `r${start + i}`, { bytes: page.subarray(i * 400, (i + 1) * 400), path: null }),
    );
    const part = encodeSplit(rows);
    if (part !== null) result.push(part);
  }
  return result;
}

function options(dir: string, split: string, rows: number): SplitWriterOptions {
  return { split, dir, plannedRows: rows, estimatedNbytes: rows * 500, maxShardSize: 500_000_000, rowGroupSize: 100, arrowSchema: outputArrowSchemaValue() };
}

async function drain(finishing: AsyncGenerator<number, WrittenSplit>): Promise<WrittenSplit> {
  for (;;) {
    const step = await finishing.next();
    if (step.done === true) return step.value;
  }
}

describe('WriterThread', () => {
  it('writes from its thread the same shards a SplitWriter writes here', async () => {
    const [threaded, here] = [await tempDir(), await tempDir()];
    const writers = new WriterThread({ train: options(threaded, 'train', 330), test: options(threaded, 'test', 20) });
    const train = parts(330, 64, 1);
    const test = parts(20, 4, 2);
    for (let i = 0; i < Math.max(train.length, test.length); i++) {
      const batch: Record<string, SplitPart> = {};
      if (train[i] !== undefined) batch.train = train[i] as SplitPart;
      if (test[i] !== undefined) batch.test = test[i] as SplitPart;
      await writers.append(batch);
    }
    assert.equal(writers.rows('train'), 330);
    const result = await drain(writers.cut('train'));
    const testResult = await drain(writers.cut('test'));
    await writers.close();
    assert.deepEqual([result.rows, testResult.rows], [330, 20]);

    const direct = new SplitWriter(options(here, 'train', 330));
    for (const part of parts(330, 64, 1)) await direct.append(part);
    const expected = await drain(direct.finish());
    assert.deepEqual(result.files, expected.files);
    for (const file of expected.files) {
      assert.ok((await readFile(path.join(threaded, file.file))).equals(await readFile(path.join(here, file.file))), file.file);
    }
  });

  it('takes one batch whose splits share an image buffer (one page, rows of both splits)', async () => {
    const dir = await tempDir();
    const writers = new WriterThread({ train: options(dir, 'train', 3), test: options(dir, 'test', 1) });
    const page = new Uint8Array(4 * 100).map((_, k) => k & 255);
    const row = (i: number) => toConversational(`q${i}`, 'c', 'r', { bytes: page.subarray(i * 100, (i + 1) * 100), path: null });
    const expected = page.slice(300, 400);
    await writers.append({ train: encodeSplit([row(0), row(1), row(2)]) as SplitPart, test: encodeSplit([row(3)]) as SplitPart });
    assert.equal((await drain(writers.cut('train'))).rows, 3);
    const test = await drain(writers.cut('test'));
    await writers.close();
    assert.equal(test.rows, 1);
    const { table } = await readParquet(path.join(dir, test.files[0]?.file ?? ''));
    const images = table.getChild('images')?.get(0)?.toJSON() as { toJSON(): { bytes: Uint8Array } }[];
    assert.deepEqual(images[0]?.toJSON().bytes, expected);
  });

  it('reports a failure in its thread as an OutputError', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'data'), 'a file where the data directory should be');
    const writers = new WriterThread({ train: options(dir, 'train', 50) });
    const failed = (async () => {
      await writers.append({ train: parts(50, 50, 3)[0] as SplitPart });
      await drain(writers.cut('train'));
    })();
    await assert.rejects(failed, (error: unknown) => error instanceof OutputError && /data/.test(error.message));
    await writers.abort();
  });

  it('removes what it wrote when aborted', async () => {
    const dir = await tempDir();
    const writers = new WriterThread({ train: options(dir, 'train', 500) });
    for (const part of parts(250, 50, 4)) await writers.append({ train: part });
    await writers.abort();
    assert.deepEqual(await readdir(path.join(dir, 'data')).catch(() => []), []);
  });
});
