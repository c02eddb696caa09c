import assert from 'node:assert/strict';
import { readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { outputArrowSchemaValue } from '../src/output/output-schema.js';
import { planShards } from '../src/output/plan-shards.js';
import { toConversational } from '../src/output/to-conversational.js';
import type { SplitPart } from '../src/write/encode-split.js';
import { settleSplit, SplitWriter, type WrittenSplit } from '../src/write/split-writer.js';
import { encodeSplit } from '../src/write/encode-split.js';
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

  it('leaves shards cut again apart until settled, and settles again what a run killed while settling left', async () => {
    const [straight, killed] = [await tempDir(), await tempDir()];
    const input = parts(450, 64);
    const expected = await write(straight, input, 450, nbytesOf(input));
    // Planned as one shard (the size estimate was wrong): the shards cut again have other names than the old one.
    const writer = new SplitWriter({ split: 'train', dir: killed, plannedRows: 450, estimatedNbytes: 1000, maxShardSize: 100_000, rowGroupSize: 100, arrowSchema: outputArrowSchemaValue() });
    for (const part of input) await writer.append(part);
    let cut: WrittenSplit | undefined;
    for (const steps = writer.cut(); ; ) {
      const step = await steps.next();
      if (step.done === true) {
        cut = step.value;
        break;
      }
    }
    assert.ok(cut.apart !== undefined && (cut.replaces ?? []).length > 0);
    const apart = cut.apart;
    // Old and new side by side: the old ones are what the checkpoint held until it names the cut.
    assert.deepEqual((await readdir(path.join(killed, apart))).sort(), cut.files.map((file) => path.basename(file.file)).sort());
    // Killed after one file was moved and one old file removed.
    const [first] = cut.files;
    assert.ok(first !== undefined);
    await rename(path.join(killed, apart, path.basename(first.file)), path.join(killed, first.file));
    await rm(path.join(killed, cut.replaces?.find((old) => !cut.files.some((file) => file.file === old)) ?? ''), { force: true });
    const settled = await settleSplit(killed, cut);
    assert.deepEqual(settled.files, expected.files);
    assert.equal(settled.apart, undefined);
    assert.deepEqual(await settleSplit(killed, cut), settled, 'settled twice');
    assert.deepEqual((await readdir(killed)).sort(), ['data']);
    assert.deepEqual((await readdir(path.join(killed, 'data'))).sort(), (await readdir(path.join(straight, 'data'))).sort());
    for (const file of expected.files) assert.ok((await readFile(path.join(killed, file.file))).equals(await readFile(path.join(straight, file.file))), file.file);
  });

  it('writes no file for a split whose rows were all rejected', async () => {
    const dir = await tempDir();
    const result = await write(dir, [], 10, 5000);
    assert.deepEqual(result.files, []);
    assert.deepEqual(await readdir(path.join(dir, 'data')).catch(() => []), []);
  });
});
