import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import { outputHuggingfaceMetadata } from '../src/output-features.js';
import { outputArrowSchemaValue } from '../src/output-schema.js';
import { ShardSink } from '../src/shard-sink.js';
import { toConversational, type ConversationalRow } from '../src/to-conversational.js';
import { readParquet, tempDir } from './fixtures.js';

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
  const sink = await ShardSink.open(file, { rowGroupSize: 100, metadata });
  for (let at = 0; at < input.length; at += chunk) await sink.write(input.slice(at, at + chunk));
  assert.deepEqual(await sink.close(), { rows: input.length });
  return readFile(file);
}

describe('ShardSink', () => {
  it('writes the same bytes however the rows were handed to it', async () => {
    const dir = await tempDir();
    const input = rows(250);
    const one = await write(path.join(dir, 'a.parquet'), input, 250);
    const many = await write(path.join(dir, 'b.parquet'), input, 7);
    assert.ok(one.equals(many));
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
    const sink = await ShardSink.open(path.join(dir, 'x.parquet'), { rowGroupSize: 100, metadata });
    await sink.write(rows(150));
    await sink.abort();
    assert.deepEqual(await readdir(dir), []);
  });
});
