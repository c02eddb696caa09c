import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { DataType, type Field } from 'apache-arrow';
import { convert, convertIter } from '../../src/run/convert.js';
import type { ConvertEvent, ConvertReport } from '../../src/run/convert-report.js';
import { OutputError } from '../../src/errors.js';
import { outputHuggingfaceMetadata } from '../../src/output/output-features.js';
import { planShards } from '../../src/output/plan-shards.js';
import { planSplit } from '../../src/plan/plan-split.js';
import { outputFile, readParquet, ROOT, sampleDir, tempDir } from '../support/fixtures.js';

const ROWS = 450;

/** Every file under `dir`, relative, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** Checks a field is nullable and, for lists, that the child is a nullable field named `element`. */
function describeField(field: Field): string {
  const type = field.type;
  const nullable = field.nullable ? '' : ' NOT NULL';
  if (DataType.isList(type)) {
    const child = type.children[0] as Field;
    return `${field.name}: list<${child.name}: ${describeField(child).replace(/^element: /, '')}>${nullable}`;
  }
  if (DataType.isStruct(type)) return `${field.name}: struct<${type.children.map(describeField).join(', ')}>${nullable}`;
  return `${field.name}: ${String(type).toLowerCase()}${nullable}`;
}

describe('convert', () => {
  let input: string;
  let output: string;
  let report: ConvertReport;

  before(async () => {
    // Three files: one single row group, two cut in row groups of 64 rows.
    const dir = await tempDir();
    input = await sampleDir(ROWS, { files: 3, rowGroupSize: 64 });
    const single = await sampleDir(50, { seed: 7 });
    await mkdir(path.join(dir, 'input'));
    for (const [from, name] of [
      [path.join(single, 'RLAIF-V-Dataset_000.parquet'), 'a.parquet'],
      ...(await readdir(input)).map((file) => [path.join(input, file), `b-${file}`]),
    ] as const) {
      await writeFile(path.join(dir, 'input', name), await readFile(from));
    }
    input = path.join(dir, 'input');
    output = path.join(dir, 'out');
    report = await convert({ input: [input], output, numProc: 2 });
  });

  it('writes the layout push_to_hub gives, and nothing else but the marker that says this tool made it', async () => {
    assert.deepEqual(await listFiles(output), [
      '.rlaif-v.json',
      'README.md',
      'data/test-00000-of-00001.parquet',
      'data/train-00000-of-00001.parquet',
      'report.json',
    ]);
    const siblings = await readdir(path.dirname(output));
    assert.deepEqual(siblings.filter((name) => name.includes('.partial')), []);
  });

  it('accounts for every row and splits ceil(n × 0.01) rows to test', () => {
    const total = ROWS + 50;
    assert.equal(report.input.rows, total);
    assert.equal(report.output.splits.test?.rows, Math.ceil(total * 0.01));
    assert.equal(report.output.splits.train?.rows, total - Math.ceil(total * 0.01));
    assert.equal(report.output.rows + report.rejected.rows, total);
    assert.equal(report.rejected.rows, 0);
    assert.ok(report.ok);
  });

  it('prepares each distinct image once and counts distinct images', async () => {
    const distinct = new Set<string>();
    for (const file of await readdir(input)) {
      const { table } = await readParquet(path.join(input, file));
      const bytes = table.getChild('image')?.getChild('bytes');
      for (let i = 0; i < table.numRows; i++) distinct.add(createHash('sha1').update(bytes?.get(i) as Uint8Array).digest('hex'));
    }
    assert.ok(distinct.size < report.input.rows, 'the sample repeats images');
    assert.equal(report.images.distinct, distinct.size);
    // Two workers may race on the same image (each checks it before hearing of the other's verdict); with checks of
    // about a millisecond that happens often in a run this small, but most repeats are still not prepared again.
    const repeats = report.input.rows - distinct.size;
    assert.equal(report.images.repeated, repeats, 'rows whose image an earlier row has');
    const prepared = report.images.validated + report.images.fromCache;
    assert.ok(prepared >= distinct.size && prepared <= distinct.size + repeats / 2, `${prepared} images prepared or taken from the cache, for ${distinct.size} distinct`);
    assert.equal(report.images.kept + report.images.reencoded, report.input.rows);
  });

  it('writes the exact Arrow schema of trl-lib/rlaif-v, field by field', async () => {
    const { schema } = await readParquet(path.join(output, 'data/train-00000-of-00001.parquet'));
    const message = 'list<element: struct<role: utf8, content: list<element: struct<type: utf8, text: utf8>>>>';
    assert.deepEqual(schema.fields.map(describeField), [
      `chosen: ${message}`,
      `rejected: ${message}`,
      `prompt: ${message}`,
      'images: list<element: struct<bytes: binary, path: utf8>>',
    ]);
  });

  it('carries the huggingface features in the footer and in the Arrow schema', async () => {
    const { schema, keyValue } = await readParquet(path.join(output, 'data/test-00000-of-00001.parquet'));
    assert.equal(keyValue.get('huggingface'), outputHuggingfaceMetadata);
    assert.equal(schema.metadata.get('huggingface'), outputHuggingfaceMetadata);
    assert.ok(keyValue.has('ARROW:schema'));
    const features = (JSON.parse(outputHuggingfaceMetadata) as { info: { features: Record<string, unknown> } }).info.features;
    assert.deepEqual(Object.keys(features), ['chosen', 'rejected', 'prompt', 'images']);
    assert.deepEqual(features.images, { feature: { _type: 'Image' }, _type: 'Sequence' });
    assert.ok(Array.isArray(features.prompt));
  });

  it('writes row groups of 100 rows', async () => {
    const { rowGroups, rows } = await readParquet(path.join(output, 'data/train-00000-of-00001.parquet'));
    assert.deepEqual(rowGroups, [100, 100, 100, 100, ...(rows % 100 === 0 ? [] : [rows % 100])]);
  });

  it('keeps source order in each split, routes the planned rows to test, and keeps image bytes', async () => {
    const sources = [];
    for (const file of (await readdir(input)).sort()) {
      const { table } = await readParquet(path.join(input, file));
      for (let i = 0; i < table.numRows; i++) sources.push(table.get(i)?.toJSON() as Record<string, unknown>);
    }
    const mask = planSplit(sources.length, 0.01, 42).testMask;
    const expected = { train: sources.filter((_, i) => mask[i] === 0), test: sources.filter((_, i) => mask[i] === 1) };
    for (const split of ['train', 'test'] as const) {
      const { table } = await readParquet(path.join(output, `data/${split}-00000-of-00001.parquet`));
      assert.equal(table.numRows, expected[split].length);
      for (let i = 0; i < table.numRows; i++) {
        const source = expected[split][i] as { question: string; chosen: string; image: { toJSON(): { bytes: Uint8Array } } };
        const row = table.get(i)?.toJSON() as Record<string, { toArray(): { toJSON(): Record<string, unknown> }[] }>;
        const prompt = row.prompt?.toArray()[0]?.toJSON() as { role: string; content: { toArray(): unknown[] } };
        assert.equal(prompt.role, 'user');
        const parts = prompt.content.toArray().map((part) => (part as { toJSON(): unknown }).toJSON());
        assert.deepEqual(parts, [{ type: 'image', text: null }, { type: 'text', text: source.question }]);
        const chosen = row.chosen?.toArray()[0]?.toJSON() as { content: { toArray(): { toJSON(): unknown }[] } };
        assert.deepEqual(chosen.content.toArray()[0]?.toJSON(), { type: 'text', text: source.chosen });
        const image = row.images?.toArray()[0]?.toJSON() as { bytes: Uint8Array; path: string | null };
        assert.deepEqual(image.bytes, source.image.toJSON().bytes);
      }
    }
  });

  it('writes the dataset card with dataset_info that matches the files', async () => {
    const card = await readFile(path.join(output, 'README.md'), 'utf8');
    const train = report.output.splits.train;
    assert.ok(train);
    assert.match(card, new RegExp(`- name: train\\n    num_bytes: ${train.numBytes}\\n    num_examples: ${train.rows}\\n`));
    assert.match(card, /- name: images\n {4}sequence: image\n/);
    assert.match(card, /path: data\/train-\*\n/);
    assert.match(card, /^license: unknown$/m, 'an input without a card of its own');
    assert.match(card, /seeded with 42/);
    assert.equal(card.match(/^---$/gm)?.length, 2);
  });

  it('fingerprints the input and the options that shape the data, not the worker count or batch size', async () => {
    const dir = await tempDir();
    const fingerprint = async (options: Partial<Parameters<typeof convert>[0]>, from = input): Promise<string> =>
      (await convert({ input: [from], output: path.join(dir, 'out'), overwrite: true, ...options })).fingerprint;
    const base = await fingerprint({ numProc: 1, writerBatchSize: 16 });
    assert.match(base, /^[0-9a-f]{64}$/);
    assert.equal(await fingerprint({ numProc: 2, writerBatchSize: 128 }), base);
    // A copy of the input elsewhere is the same input.
    const copy = path.join(dir, 'copy');
    await mkdir(copy);
    for (const name of await readdir(input)) await writeFile(path.join(copy, name), await readFile(path.join(input, name)));
    assert.equal(await fingerprint({ numProc: 1 }, copy), base);
    const others = [await fingerprint({ seed: 7 }), await fingerprint({ testSize: 0.05 }), await fingerprint({ images: 'png' }), await fingerprint({ maxShardSize: '1MB' })];
    assert.equal(new Set([base, ...others]).size, 5);
    // Other content: one file fewer.
    const fewer = path.join(dir, 'fewer');
    await mkdir(fewer);
    const [first] = (await readdir(input)).filter((name) => name.endsWith('.parquet')).sort();
    await writeFile(path.join(fewer, first ?? ''), await readFile(path.join(input, first ?? '')));
    assert.notEqual(await fingerprint({}, fewer), base);
  });

  it('gives byte-identical output for any worker count and batch size', async () => {
    // Images large enough that data pages fill up inside a batch: that is where batching could change the bytes.
    const big = await tempDir();
    const { makeSample } = await import('../../src/source/make-sample.js');
    await makeSample({ rows: 240, output: big, imageSide: 640, files: 2, rowGroupSize: 50 });
    const dir = await tempDir();
    const runs = [
      { numProc: 2, writerBatchSize: 128 },
      { numProc: 1, writerBatchSize: 16 },
      { numProc: 2, writerBatchSize: 7 },
      { numProc: 2, writerBatchSize: 300 },
    ];
    const outputs: string[] = [];
    for (const [index, run] of runs.entries()) {
      outputs.push(path.join(dir, String(index)));
      await convert({ input: [big], output: path.join(dir, String(index)), ...run });
    }
    for (const file of ['README.md', 'data/train-00000-of-00001.parquet', 'data/test-00000-of-00001.parquet']) {
      const reference = await outputFile(outputs[0] ?? '', file);
      for (const [index, run] of runs.entries()) {
        assert.ok(reference.equals(await outputFile(outputs[index] ?? '', file)), `${file}: ${JSON.stringify(run)}`);
      }
    }
  });

  it('gives the same bytes when the image column is read page by page as when row groups are read whole', async () => {
    const dir = await tempDir();
    await convert({ input: [input], output: path.join(dir, 'paged'), streamRowGroupBytes: 1 });
    await convert({ input: [input], output: path.join(dir, 'whole'), streamRowGroupBytes: '100GB' });
    for (const file of ['README.md', 'data/train-00000-of-00001.parquet', 'data/test-00000-of-00001.parquet']) {
      assert.ok((await outputFile(path.join(dir, 'paged'), file)).equals(await outputFile(path.join(dir, 'whole'), file)), file);
      assert.ok((await outputFile(output, file)).equals(await outputFile(path.join(dir, 'paged'), file)), file);
    }
  });

  it('cuts shards by uncompressed size as push_to_hub does, contiguous and in order', async () => {
    const dir = await tempDir();
    const sharded = path.join(dir, 'sharded');
    const small = await convert({ input: [input], output: sharded, maxShardSize: 400_000, testSize: 60 });
    const train = small.output.splits.train;
    assert.ok(train);
    const expected = planShards(train.rows, train.numBytes, 400_000);
    assert.ok(expected.length > 2);
    assert.deepEqual(
      train.files.map((file) => file.rows),
      expected,
    );
    assert.deepEqual(
      train.files.map((file) => file.file),
      expected.map((_, index) => `data/train-${String(index).padStart(5, '0')}-of-${String(expected.length).padStart(5, '0')}.parquet`),
    );
    assert.equal(small.output.splits.test?.rows, 60);
    // The same rows, cut differently: the concatenated shards hold what the single file holds.
    const questions = async (files: string[]): Promise<string[]> => {
      const all: string[] = [];
      for (const file of files) {
        const { table } = await readParquet(file);
        for (let i = 0; i < table.numRows; i++) all.push(JSON.stringify(table.get(i)?.toJSON().prompt));
      }
      return all;
    };
    const whole = await convert({ input: [input], output: path.join(dir, 'whole'), testSize: 60 });
    assert.deepEqual(
      await questions(train.files.map((file) => path.join(sharded, file.file))),
      await questions((whole.output.splits.train?.files ?? []).map((file) => path.join(dir, 'whole', file.file))),
    );
  });

  it('refuses an existing output directory unless told to overwrite, and leaves it untouched', async () => {
    const dir = await tempDir();
    const target = path.join(dir, 'taken');
    await convert({ input: [input], output: target });
    await writeFile(path.join(target, 'mine.txt'), 'keep me');
    await assert.rejects(
      convert({ input: [input], output: target }),
      (error: unknown) => error instanceof OutputError && error.code === 'ERR_OUTPUT_EXISTS' && error.message.includes('--overwrite'),
    );
    assert.ok((await listFiles(target)).includes('mine.txt'));
    await convert({ input: [input], output: target, overwrite: true });
    assert.ok((await listFiles(target)).includes('README.md'));
    assert.ok(!(await listFiles(target)).includes('mine.txt'));
  });

  it('reports progress as typed events: planned first, convert and write up to the total, done last', async () => {
    const dir = await tempDir();
    const events: ConvertEvent[] = [];
    for await (const event of convertIter({ input: [input], output: path.join(dir, 'events'), writerBatchSize: 32 })) events.push(event);
    assert.equal(events[0]?.type, 'planned');
    assert.equal(events.at(-1)?.type, 'done');
    const converted = events.filter((event) => event.type === 'progress' && event.stage === 'convert');
    const done = converted.map((event) => (event.type === 'progress' ? event.done : -1));
    assert.deepEqual(done, [...done].sort((a, b) => a - b));
    assert.equal(done.at(-1), ROWS + 50);
    // Rows are written as they are converted; a 'write' stage shows only when shards must be cut again at the end.
    assert.ok(!events.some((event) => event.type === 'progress' && event.stage === 'write'));
  });

  it('leaves nothing behind when the run is aborted', async () => {
    const dir = await tempDir();
    const controller = new AbortController();
    const target = path.join(dir, 'aborted');
    await assert.rejects(async () => {
      for await (const event of convertIter({ input: [input], output: target, writerBatchSize: 16, signal: controller.signal })) {
        if (event.type === 'progress') controller.abort();
      }
    }, /abort/i);
    assert.deepEqual(await readdir(dir), []);
  });
  it('stops its workers when planning fails and when the caller stops early', { skip: !existsSync('/proc/self/task') && 'needs Linux /proc to count threads' }, async () => {
    // The pool starts while the input is planned. Its threads must end with a failed or abandoned run, not linger
    // in a library user's process.
    const dir = await tempDir();
    const library = path.join(ROOT, 'dist', 'src', 'index.js');
    const script = `
      import { readdirSync } from 'node:fs';
      import { readFile } from 'node:fs/promises';
      import { convert, convertIter } from ${JSON.stringify(library)};
      await readFile(${JSON.stringify(library)}); // starts libuv's thread pool, so it is in the count already
      const threads = () => readdirSync('/proc/self/task').length;
      const settled = async (count) => {
        // A thread leaves /proc a moment after its worker said it exited.
        for (let wait = 0; threads() > count && wait < 100; wait++) await new Promise((resolve) => setTimeout(resolve, 50));
        return threads() - count;
      };
      const before = threads();
      await convert({ input: [${JSON.stringify(path.join(dir, 'missing'))}], output: ${JSON.stringify(path.join(dir, 'a'))} }).catch((error) => console.log(error.code));
      console.log('left', await settled(before));
      for await (const event of convertIter({ input: [${JSON.stringify(input)}], output: ${JSON.stringify(path.join(dir, 'b'))} })) { console.log(event.type); break; }
      console.log('left', await settled(before));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    assert.deepEqual(stdout.trim().split('\n'), ['ERR_INPUT_MISSING', 'left 0', 'planned', 'left 0']);
    assert.deepEqual(await readdir(dir), []);
  });
});
