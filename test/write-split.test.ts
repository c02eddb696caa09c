import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { outputArrowSchemaValue } from '../src/output-schema.js';
import { planShards } from '../src/plan-shards.js';
import { toConversational } from '../src/to-conversational.js';
import type { SplitPart } from '../src/types.js';
import { SplitWriter, type WrittenSplit } from '../src/write-split.js';
import { encodeSplit } from '../workers/encode-split.js';
import { readParquet, tempDir } from './fixtures.js';

/** `count` rows in parts of `size`, each row with an image of 1,000 distinct bytes. */
function parts(count: number, size: number): SplitPart[] {
  const result: SplitPart[] = [];
  for (let start = 0; start < count; start += size) {
    const rows = [];
    for (let i = start; i < Math.min(count, start + size); i++) {
      rows.push(toConversational(`question ${i}`, `chosen ${i}`, `rejected ${i}`, { bytes: new Uint8Array(1000).fill(i % 251), path: null }));
    }
    const part = encodeSplit(rows);
    if (part !== null) result.push(part);
  }
  return result;
}

async function write(dir: string, input: SplitPart[], plannedRows: number, estimatedNbytes: number): Promise<WrittenSplit> {
  const writer = new SplitWriter({ split: 'train', dir, plannedRows, estimatedNbytes, maxShardSize: 100_000, rowGroupSize: 100, arrowSchema: outputArrowSchemaValue() });
  for (const part of input) await writer.append(part);
  const finishing = writer.finish();
  for (;;) {
    const step = await finishing.next();
    if (step.done === true) return step.value;
  }
}

const nbytesOf = (input: SplitPart[]): number => input.reduce((total, part) => total + part.nbytes, 0);

describe('SplitWriter', () => {
  it('writes the planned shards directly when the estimate holds', async () => {
    const dir = await tempDir();
    const input = parts(450, 64);
    const result = await write(dir, input, 450, nbytesOf(input));
    assert.equal(result.resharded, false);
    assert.deepEqual(result.files.map((file) => file.rows), planShards(450, nbytesOf(input), 100_000));
    assert.ok(result.files.length > 1);
  });

  it('cuts the shards again, to the same bytes, when the size estimate was wrong', async () => {
    const [exact, wrong] = [await tempDir(), await tempDir()];
    const input = parts(450, 64);
    const good = await write(exact, input, 450, nbytesOf(input));
    const fixed = await write(wrong, input, 450, 1000);
    assert.equal(fixed.resharded, true);
    assert.deepEqual(fixed.files, good.files);
    for (const file of good.files) {
      assert.ok((await readFile(path.join(exact, file.file))).equals(await readFile(path.join(wrong, file.file))), file.file);
    }
    assert.deepEqual((await readdir(wrong)).filter((name) => name.startsWith('.')), [], 'no provisional files left');
  });

  it('cuts the shards again when fewer rows came than planned (rows were rejected)', async () => {
    const dir = await tempDir();
    const input = parts(440, 40);
    const result = await write(dir, input, 450, nbytesOf(input));
    assert.equal(result.resharded, true);
    assert.deepEqual(result.files.map((file) => file.rows), planShards(440, nbytesOf(input), 100_000));
    let rows = 0;
    for (const file of result.files) rows += (await readParquet(path.join(dir, file.file))).rows;
    assert.equal(rows, 440);
  });

  it('writes no file for a split whose rows were all rejected', async () => {
    const dir = await tempDir();
    const result = await write(dir, [], 10, 5000);
    assert.deepEqual(result.files, []);
    assert.deepEqual(await readdir(path.join(dir, 'data')).catch(() => []), []);
  });
});
