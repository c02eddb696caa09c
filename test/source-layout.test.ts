import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { Binary, Field, Int64, List, Schema, Struct, Table, tableToIPC, Utf8, vectorFromArray, type Vector } from 'apache-arrow';
import { imagesType } from '../src/output/output-schema.js';
import { readSourceRows } from '../src/read/source-rows-from-arrow.js';
import { convert } from '../src/run/convert.js';
import { ParquetSink } from '../src/parquet/parquet-sink.js';
import { sourceColumns, writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import { parseColumnMap } from '../src/source/source-layout.js';
import type { SourceRow } from '../src/source/source-row.js';
import { goodRows } from '../scripts/bad-corpus.js';
import { readJson, readParquet, runCli, tempDir } from './fixtures.js';

/** Writes columns of any names and types, in the order given. */
async function writeColumns(file: string, columns: Record<string, Vector>): Promise<void> {
  const fields = Object.entries(columns).map(([name, vector]) => new Field(name, vector.type, true));
  const sink = await ParquetSink.open(file, { rowGroupSize: 16, metadata: new Map() });
  await sink.write(tableToIPC(new Table(new Schema(fields), columns), 'stream'));
  await sink.close();
}

/** The data files of an output, by name (the card differs with the files it was made from: it lists them). */
async function dataOf(dir: string): Promise<Map<string, Buffer>> {
  const report = await readJson<{ output: { splits: Record<string, { files: { file: string }[] }> } }>(path.join(dir, 'report.json'));
  const files = new Map<string, Buffer>();
  for (const split of Object.values(report.output.splits)) for (const file of split.files) files.set(file.file, await readFile(path.join(dir, file.file)));
  return files;
}

function assertSameData(actual: Map<string, Buffer>, expected: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), what);
  for (const [name, bytes] of expected) assert.ok(actual.get(name)?.equals(bytes), `${what}: ${name} differs`);
}

/** Every row of an output, as question, chosen, rejected and the image's bytes (base64), sorted. */
async function rowsOf(dir: string): Promise<string[]> {
  const rows: string[] = [];
  for (const name of (await dataOf(dir)).keys()) {
    if (!name.endsWith('.parquet')) continue;
    const { table } = await readParquet(path.join(dir, name));
    for (let index = 0; index < table.numRows; index++) {
      const row = JSON.parse(JSON.stringify(table.get(index)?.toJSON(), (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value))) as {
        prompt: { content: { text: string | null }[] }[];
        chosen: { content: { text: string }[] }[];
        rejected: { content: { text: string }[] }[];
        images: { bytes: string }[];
      };
      rows.push(JSON.stringify([row.prompt[0]?.content[1]?.text, row.chosen[0]?.content[0]?.text, row.rejected[0]?.content[0]?.text, row.images[0]?.bytes]));
    }
  }
  return rows.sort();
}

describe('readSourceRows of a converted dataset', () => {
  const message = (role: string, content: string): { role: string; content: string } => ({ role, content });
  const stringMessages = new List(new Field('element', new Struct([new Field('role', new Utf8(), true), new Field('content', new Utf8(), true)]), true));
  const images = vectorFromArray([[{ bytes: new Uint8Array([1, 2, 3]), path: null }], null], imagesType);

  it('takes the first user message as the question and the first assistant message as each answer', () => {
    // datasets 5.x writes a prompt's content as a JSON string; answers that merely read as JSON stay text.
    const prompt = vectorFromArray(
      [[message('system', 'Be brief.'), message('user', '[{"type": "image", "text": null}, {"type": "text", "text": "How many?"}]')], [message('user', 'plain text')]],
      stringMessages,
    );
    const chosen = vectorFromArray([[message('assistant', '2')], [message('assistant', '[1, 2]')]], stringMessages);
    const rejected = vectorFromArray([[message('assistant', 'true')], [message('user', 'not an answer')]], stringMessages);
    const ipc = tableToIPC(new Table({ prompt, chosen, rejected, images }), 'stream');
    const rows = readSourceRows(ipc, undefined, { kind: 'converted' });
    assert.deepEqual(
      rows.map((row) => [row.question, row.chosen, row.rejected, row.image?.bytes === undefined ? undefined : Array.from(row.image?.bytes ?? [])]),
      [
        ['How many?', '2', 'true', [1, 2, 3]],
        ['plain text', '[1, 2]', null, undefined],
      ],
    );
  });

  it('passes over null parts and messages instead of failing', () => {
    const parts = new List(new Field('element', new Struct([new Field('type', new Utf8(), true), new Field('text', new Utf8(), true)]), true));
    const structMessages = new List(new Field('element', new Struct([new Field('role', new Utf8(), true), new Field('content', parts, true)]), true));
    const prompt = vectorFromArray([[null, { role: 'user', content: [null, { type: 'image', text: null }, { type: 'text', text: 'Q?' }] }], null], structMessages);
    const answer = vectorFromArray([[{ role: 'assistant', content: [{ type: 'text', text: 'A.' }] }], [{ role: 'assistant', content: null }]], structMessages);
    const rows = readSourceRows(tableToIPC(new Table({ prompt, chosen: answer, rejected: answer, images }), 'stream'), undefined, { kind: 'converted' });
    assert.deepEqual(
      rows.map((row) => [row.question, row.chosen]),
      [
        ['Q?', 'A.'],
        [null, null],
      ],
    );
  });
});

describe('inputs shaped like RLAIF-V', () => {
  let rows: SourceRow[];
  let dir: string;
  let reference: Map<string, Buffer>;
  const options = { testSize: 0.1, seed: 3, numProc: 2 };

  before(async () => {
    rows = await goodRows(40);
    dir = await tempDir();
    await mkdir(path.join(dir, 'source'));
    await writeSourceFile(path.join(dir, 'source', 'rows.parquet'), rows, 16);
    await convert({ input: [path.join(dir, 'source')], output: path.join(dir, 'reference'), ...options });
    reference = await dataOf(path.join(dir, 'reference'));
  });

  it('reads columns under other names with --columns, to the same output', async () => {
    const columns = sourceColumns(rows);
    await mkdir(path.join(dir, 'mapped'));
    await writeColumns(path.join(dir, 'mapped', 'rows.parquet'), {
      id: vectorFromArray(rows.map((_, index) => BigInt(index)), new Int64()),
      answer_good: columns.chosen as Vector,
      answer_bad: columns.rejected as Vector,
      img: columns.image as Vector,
      q: columns.question as Vector,
    });
    const output = path.join(dir, 'mapped-out');
    const result = await runCli(['convert', '-i', path.join(dir, 'mapped'), '-o', output, '--columns', 'image=img,question=q,chosen=answer_good,rejected=answer_bad', '--test-size', '0.1', '--seed', '3']);
    assert.equal(result.code, 0, result.stderr);
    assertSameData(await dataOf(output), reference, 'mapped columns');
    const wrong = await runCli(['convert', '-i', path.join(dir, 'mapped'), '-o', path.join(dir, 'wrong'), '--columns', 'image=img,question=question_text']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /rows\.parquet: missing column question_text \(--columns question=question_text\), column chosen, column rejected\./);
    const unmapped = await runCli(['convert', '-i', path.join(dir, 'mapped'), '-o', path.join(dir, 'wrong')]);
    assert.equal(unmapped.code, 2);
    assert.match(unmapped.stderr, /missing column image, column question, column chosen, column rejected\. .* Name them with --columns image=…/);
    assert.throws(() => parseColumnMap('image=a,picture=b'), /--columns takes image=, question=, chosen= and rejected= .*got "picture=b"/);
    assert.throws(() => parseColumnMap('image=a,image=b'), /got "image=b"/);
  });

  it('needs only the image and the three texts; the image may be plain bytes, or a path to a file', async () => {
    const columns = sourceColumns(rows);
    const texts = { question: columns.question as Vector, chosen: columns.chosen as Vector, rejected: columns.rejected as Vector };
    await mkdir(path.join(dir, 'binary'));
    await writeColumns(path.join(dir, 'binary', 'rows.parquet'), { image: vectorFromArray(rows.map((row) => row.image?.bytes ?? null), new Binary()), ...texts });
    const binary = path.join(dir, 'binary-out');
    await convert({ input: [path.join(dir, 'binary')], output: binary, ...options });
    assertSameData(await dataOf(binary), reference, 'binary image column, no other columns');

    // Paths relative to the parquet file, in a folder beside it.
    await mkdir(path.join(dir, 'paths', 'images'), { recursive: true });
    for (const [index, row] of rows.entries()) await writeFile(path.join(dir, 'paths', 'images', `${index}.img`), row.image?.bytes ?? new Uint8Array());
    await writeColumns(path.join(dir, 'paths', 'rows.parquet'), { image: vectorFromArray(rows.map((_, index) => `images/${index}.img`), new Utf8()), ...texts });
    const paths = path.join(dir, 'paths-out');
    const first = await convert({ input: [path.join(dir, 'paths')], output: paths, ...options });
    assertSameData(await dataOf(paths), reference, 'image paths');
    // The image files are part of the input: a changed one changes the fingerprint (no run is taken up across it).
    const same = await convert({ input: [path.join(dir, 'paths')], output: path.join(dir, 'paths-same'), ...options });
    assert.equal(same.fingerprint, first.fingerprint);
    await writeFile(path.join(dir, 'paths', 'images', '0.img'), rows[1]?.image?.bytes ?? new Uint8Array());
    const changed = await convert({ input: [path.join(dir, 'paths')], output: path.join(dir, 'paths-changed'), ...options });
    assert.notEqual(changed.fingerprint, first.fingerprint);
    await writeFile(path.join(dir, 'paths', 'images', '0.img'), rows[0]?.image?.bytes ?? new Uint8Array());

    // A path to no file, to a folder, or out of the dataset's directory: the row is rejected, saying why; the file
    // outside is not read.
    await mkdir(path.join(dir, 'nested', 'data'), { recursive: true });
    await cp(path.join(dir, 'paths', 'images'), path.join(dir, 'nested', 'images'), { recursive: true });
    // Links inside the dataset to a file and to a folder outside it: where the file really is decides.
    await writeFile(path.join(dir, 'outside.jpg'), rows[0]?.image?.bytes ?? new Uint8Array());
    await symlink(path.join(dir, 'outside.jpg'), path.join(dir, 'nested', 'images', 'link.jpg'));
    await symlink(path.join(dir, 'paths', 'images'), path.join(dir, 'nested', 'images', 'elsewhere'));
    const odd = new Map([
      [5, 'images/none.jpg'],
      [6, '../images'],
      [7, '../../mapped/rows.parquet'],
      [8, '/etc/hostname'],
      [9, '../images/link.jpg'],
      [10, '../images/elsewhere/3.img'],
    ]);
    await writeColumns(path.join(dir, 'nested', 'data', 'rows.parquet'), {
      image: vectorFromArray(rows.map((_, index) => odd.get(index) ?? `../images/${index}.img`), new Utf8()),
      ...texts,
    });
    const report = await convert({ input: [path.join(dir, 'nested')], output: path.join(dir, 'missing-out'), ...options, maxRejectFraction: 1 });
    assert.deepEqual(report.rejected.byCode, { missing_image: 6 });
    const { table } = await readParquet(path.join(dir, 'missing-out', 'rejects', 'rejects.parquet'));
    const messages = Array.from({ length: table.numRows }, (_, index) => String(table.get(index)?.toJSON().error_message));
    assert.match(messages[0] ?? '', /the image file "images\/none\.jpg" cannot be read \(ENOENT: data\/images\/none\.jpg\)/);
    assert.match(messages[1] ?? '', /the image path "\.\.\/images" is not a file/);
    assert.match(messages[2] ?? '', /the image path "\.\.\/\.\.\/mapped\/rows\.parquet" leads outside the dataset's directory/);
    assert.match(messages[3] ?? '', /the image path "\/etc\/hostname" leads outside/);
    assert.match(messages[4] ?? '', /the image path "\.\.\/images\/link\.jpg" leads outside the dataset's directory through a link/);
    assert.match(messages[5] ?? '', /the image path "\.\.\/images\/elsewhere\/3\.img" leads outside the dataset's directory through a link/);
    assert.ok(messages.every((message) => !message.includes(dir)), 'messages name no absolute path');
  });

  it('reads a converted output as input: the same rows, split anew, and not its rejects', async () => {
    // The output's rejects are rows it refused: converting it again reads data/ alone.
    await mkdir(path.join(dir, 'reference', 'rejects'), { recursive: true });
    await cp(path.join(dir, 'reference', 'data', (await readdir(path.join(dir, 'reference', 'data')))[0] ?? ''), path.join(dir, 'reference', 'rejects', 'rejects.parquet'));
    const again = path.join(dir, 'again');
    const result = await runCli(['convert', '-i', path.join(dir, 'reference'), '-o', again, '--seed', '9', '--test-size', '0.25', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { input: { rows: number }; output: { splits: { test: { rows: number } } } };
    assert.equal(report.input.rows, 40);
    assert.equal(report.output.splits.test.rows, 10);
    assert.deepEqual(await rowsOf(again), await rowsOf(path.join(dir, 'reference')));
    // Re-encoded as it is converted again.
    const jpeg = await convert({ input: [path.join(dir, 'reference')], output: path.join(dir, 'again-jpeg'), images: 'jpeg', quality: 80, numProc: 2 });
    assert.equal(jpeg.images.reencoded, 40);
  });
});
