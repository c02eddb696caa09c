import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import { assembleSplit, type AssembleCounts } from '../../src/write/assemble-split.js';
import { outputArrowSchemaValue } from '../../src/output/output-schema.js';
import { ShardWriter, type WrittenShard } from '../../src/write/shard-writer.js';
import { toConversational, type ConversationalRow } from '../../src/output/to-conversational.js';
import { tempDir } from '../support/fixtures.js';

function rows(count: number): ConversationalRow[] {
  return Array.from({ length: count }, (_, i) =>
    toConversational(`question ${i} ✓`, `chosen ${i}`, i % 5 === 0 ? '' : `rejected ${i}`, { bytes: new Uint8Array(200 + (i % 37)).fill(i % 256), path: null }),
  );
}

const arrowSchema = outputArrowSchemaValue();

/** Writes `input` through a ShardWriter of `plan`, handing it rows in chunks of 7, from split row `start`. */
async function write(dir: string, input: ConversationalRow[], plan: number[], start?: number): Promise<WrittenShard[]> {
  const writer = new ShardWriter({ split: 'train', dir, plan, rowGroupSize: 100, arrowSchema, ...(start === undefined ? {} : { start }) });
  for (let at = 0; at < input.length; at += 7) await writer.write(input.slice(at, at + 7));
  return writer.finish();
}

/** The pieces a multi-machine run would write: `input` cut at `cuts`, each piece written as a part writes it. */
async function pieces(input: ConversationalRow[], plan: number[], cuts: number[]): Promise<{ path: string; rows: number; crc: number }[]> {
  const bounds = [0, ...cuts, input.length];
  const sources = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const [from, to] = [bounds[i] ?? 0, bounds[i + 1] ?? 0];
    const dir = await tempDir();
    for (const file of await write(dir, input.slice(from, to), plan, from)) sources.push({ path: path.join(dir, file.file), rows: file.rows, crc: file.crc });
  }
  return sources;
}

async function assemble(sources: { path: string; rows: number; crc: number }[], plan: number[]): Promise<{ dir: string; files: WrittenShard[]; counts: AssembleCounts }> {
  const dir = await tempDir();
  const writer = new ShardWriter({ split: 'train', dir, plan, rowGroupSize: 100, arrowSchema });
  const counts: AssembleCounts = { linked: 0, copied: 0, rewritten: 0 };
  const steps = assembleSplit(sources, writer, 100);
  for (;;) {
    const step = await steps.next();
    if (step.done === true) return { dir, files: step.value, counts };
    counts[step.value.how] += step.value.rows;
  }
}

async function assertSameShards(actual: { dir: string; files: WrittenShard[] }, expected: { dir: string; files: WrittenShard[] }, what: string): Promise<void> {
  assert.deepEqual(actual.files, expected.files, what);
  for (const file of expected.files) {
    assert.ok((await readFile(path.join(actual.dir, file.file))).equals(await readFile(path.join(expected.dir, file.file))), `${what}: ${file.file}`);
  }
}

describe('ShardWriter from a split row other than the first', () => {
  it('cuts its row groups where the whole shard has them, and starts in the shard the row falls in', async () => {
    const dir = await tempDir();
    const files = await write(dir, rows(300), [250, 250, 250], 430);
    assert.deepEqual(
      files.map((file) => [path.basename(file.file), file.rows]),
      [
        ['train-00001-of-00003.parquet', 70],
        ['train-00002-of-00003.parquet', 230],
      ],
    );
    const groups = async (file: string): Promise<number[]> => parquetMetadata(new Uint8Array(await readFile(path.join(dir, file)))).row_groups.map((group) => Number(group.num_rows));
    // Shard 1 starts at row 250: the part starts 180 rows into it, so its first group ends at 200, then the shard ends.
    assert.deepEqual(await groups(files[0]?.file ?? ''), [20, 50]);
    assert.deepEqual(await groups(files[1]?.file ?? ''), [100, 100, 30]);
  });
});

describe('assembleSplit', () => {
  const input = rows(1000);
  const plan = [334, 333, 333];

  it('puts the pieces of a multi-machine run together into the bytes of one writer, copying what it can', async () => {
    const direct = await tempDir();
    const expected = { dir: direct, files: await write(direct, input, plan) };
    for (const cuts of [[], [500], [120, 121, 650], [1, 334, 667, 999], [37, 290, 410, 720, 888]]) {
      const result = await assemble(await pieces(input, plan, cuts), plan);
      await assertSameShards(result, expected, `cut at ${cuts.join(', ')}`);
      assert.equal(result.counts.linked + result.counts.copied + result.counts.rewritten, 1000);
      // Only the row groups a cut falls in are encoded again.
      assert.ok(result.counts.rewritten <= cuts.length * 100, `cut at ${cuts.join(', ')}: ${JSON.stringify(result.counts)}`);
    }
  });

  it('takes a piece that is a whole shard by a hard link, not a copy', async () => {
    const sources = await pieces(input, plan, [334, 667]);
    const result = await assemble(sources, plan);
    assert.deepEqual(result.counts, { linked: 1000, copied: 0, rewritten: 0 });
    assert.equal((await stat(path.join(result.dir, result.files[1]?.file ?? ''))).ino, (await stat(sources[1]?.path ?? '')).ino);
  });

  it('cuts shards again to another plan, to the bytes of writing them that way', async () => {
    const sources = await pieces(input, plan, [500]);
    for (const other of [[1000], [500, 500], [250, 250, 250, 250], [101, 101, 101, 101, 101, 99, 99, 99, 99, 99]]) {
      const direct = await tempDir();
      const expected = { dir: direct, files: await write(direct, input, other) };
      await assertSameShards(await assemble(sources, other), expected, `plan ${other.join(', ')}`);
    }
  });

  it('refuses a piece that holds other rows than it was written with', async () => {
    const [first, second] = await pieces(input, plan, [500]);
    assert.ok(first !== undefined && second !== undefined);
    await assert.rejects(assemble([{ ...first, rows: first.rows + 1 }, second], plan), /holds 334 rows, not the 335/);
  });
});
