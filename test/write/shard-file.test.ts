import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, it } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import { outputHuggingfaceMetadata } from '../../src/output/output-features.js';
import { outputArrowSchemaValue } from '../../src/output/output-schema.js';
import { ShardFile } from '../../src/write/shard-file.js';
import { toConversational, type ConversationalRow } from '../../src/output/to-conversational.js';
import { readParquet, tempDir } from '../support/fixtures.js';

function rows(count: number): ConversationalRow[] {
  return Array.from({ length: count }, (_, i) =>
    toConversational(`question ${i} ✓`, `chosen ${i}`, `rejected ${i}`, { bytes: new Uint8Array(300 + i).fill(i % 256), path: null }),
  );
}

const metadata = new Map([
  ['ARROW:schema', outputArrowSchemaValue()],
  ['huggingface', outputHuggingfaceMetadata],
]);

async function write(file: string, input: ConversationalRow[], chunk: number): Promise<Buffer> {
  const sink = await ShardFile.open(file, { rowGroupSize: 100, metadata });
  for (let at = 0; at < input.length; at += chunk) await sink.write(input.slice(at, at + chunk));
  assert.equal((await sink.close()).rows, input.length);
  return readFile(file);
}

describe('ShardFile', () => {
  it('writes the same bytes however the rows were handed to it', async () => {
    const dir = await tempDir();
    const input = rows(250);
    const one = await write(path.join(dir, 'a.parquet'), input, 250);
    const many = await write(path.join(dir, 'b.parquet'), input, 7);
    assert.ok(one.equals(many));
  });

  it('goes on after a crash from its state, to the same bytes, whatever was written after the state', async () => {
    const dir = await tempDir();
    const input = rows(330);
    const whole = await write(path.join(dir, 'whole.parquet'), input, 330);
    for (const [stateAt, crashAt] of [
      [150, 290],
      [100, 100],
      [7, 260],
      [0, 5],
    ] as const) {
      const file = path.join(dir, `resumed-${stateAt}-${crashAt}.parquet`);
      const first = await ShardFile.open(file, { rowGroupSize: 100, metadata });
      await first.write(input.slice(0, stateAt));
      const state = first.state();
      const pending = first.pendingRows.length;
      assert.equal(state.rows + pending, stateAt);
      await first.write(input.slice(stateAt, crashAt)); // written after the state, then the process dies
      const resumed = await ShardFile.resume(file, { rowGroupSize: 100, metadata }, JSON.parse(JSON.stringify(state)) as typeof state);
      await resumed.write(input.slice(state.rows));
      const { rows: written, crc } = await resumed.close();
      assert.equal(written, 330);
      const bytes = await readFile(file);
      assert.ok(bytes.equals(whole), `state at ${stateAt}, crash at ${crashAt}`);
      assert.equal(crc, crc32(bytes));
    }
  });

  it('stores images plain and uncompressed, text with snappy, no statistics, 100 rows a row group', async () => {
    const file = path.join(await tempDir(), 'shard.parquet');
    const bytes = await write(file, rows(250), 64);
    const footer = parquetMetadata(new Uint8Array(bytes));
    assert.deepEqual(footer.row_groups.map((group) => Number(group.num_rows)), [100, 100, 50]);
    for (const column of footer.row_groups[0]?.columns ?? []) {
      const meta = column.meta_data;
      const isImage = meta?.path_in_schema[0] === 'images';
      assert.equal(meta?.codec, isImage ? 'UNCOMPRESSED' : 'SNAPPY', meta?.path_in_schema.join('.'));
      if (isImage) assert.deepEqual(meta?.encodings, ['PLAIN'] as never);
      assert.equal(meta?.statistics, undefined);
    }
    assert.deepEqual(
      footer.key_value_metadata?.map((entry) => entry.key),
      ['ARROW:schema', 'huggingface'],
    );
  });

  it('reads back as the rows it was given, images byte for byte', async () => {
    const file = path.join(await tempDir(), 'shard.parquet');
    const input = rows(120);
    await write(file, input, 50);
    const { table } = await readParquet(file);
    assert.equal(table.numRows, 120);
    for (const i of [0, 99, 100, 119]) {
      const row = table.get(i)?.toJSON() as Record<string, { toJSON(): unknown }>;
      const images = row.images?.toJSON() as { toJSON(): { bytes: Uint8Array; path: string | null } }[];
      assert.deepEqual(images[0]?.toJSON().bytes, input[i]?.images[0]?.bytes);
      assert.equal(JSON.stringify(row.prompt), JSON.stringify(input[i]?.prompt));
    }
  });

  it('leaves no file behind when aborted', async () => {
    const dir = await tempDir();
    const sink = await ShardFile.open(path.join(dir, 'x.parquet'), { rowGroupSize: 100, metadata });
    await sink.write(rows(150));
    await sink.abort();
    assert.deepEqual(await readdir(dir), []);
  });
});
