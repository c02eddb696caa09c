/**
 * Damaged data pages of the input, not only footers: seeded mutations (a byte flipped, a run of 0xff, a run of zeros)
 * at random places inside the column chunks of a file, page headers and compressed data alike. Each run must end in an
 * output with every row accounted for, or in exit 2 with ERR_PARQUET_DATA naming the file and row group (and the
 * column, where the damage can be placed), never in an unexpected error or a crash, and with nothing left behind.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import { convert } from '../../src/run/convert.js';
import type { ConvertReport } from '../../src/run/convert-report.js';
import { InputError } from '../../src/errors.js';
import { createRandom, randomInt } from '../../src/util/random.js';
import { readJson, runCli, sampleDir, tempDir } from '../support/fixtures.js';

/** Byte ranges of every column chunk of a parquet file: its pages, headers and data. */
function chunksOf(file: Uint8Array): { column: string; start: number; end: number }[] {
  const metadata = parquetMetadata(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer);
  return metadata.row_groups.flatMap((group) =>
    group.columns.flatMap((chunk) => {
      const meta = chunk.meta_data;
      if (meta === undefined) return [];
      const start = Number(meta.dictionary_page_offset ?? meta.data_page_offset);
      return [{ column: meta.path_in_schema.join('.'), start, end: start + Number(meta.total_compressed_size) }];
    }),
  );
}

const MUTATIONS = ['flip', 'ones', 'zeros'] as const;

function mutate(file: Uint8Array, random: () => number): { bytes: Uint8Array; what: string } {
  const chunks = chunksOf(file);
  const chunk = chunks[randomInt(random, chunks.length)];
  assert.ok(chunk !== undefined);
  const at = chunk.start + randomInt(random, chunk.end - chunk.start);
  const kind = MUTATIONS[randomInt(random, MUTATIONS.length)] ?? 'flip';
  const bytes = file.slice();
  const length = kind === 'flip' ? 1 : 1 + randomInt(random, kind === 'ones' ? 64 : 4096);
  const end = Math.min(at + length, chunk.end);
  for (let i = at; i < end; i++) bytes[i] = kind === 'flip' ? (bytes[i] ?? 0) ^ (1 << randomInt(random, 8)) : kind === 'ones' ? 0xff : 0;
  return { bytes, what: `${kind} at byte ${at} (${end - at} bytes) in ${chunk.column}` };
}

describe('damaged data pages of the input', () => {
  it('stop the run with ERR_PARQUET_DATA naming the file, the column and the row group, leaving nothing', async () => {
    const sample = await sampleDir(120, { files: 1, rowGroupSize: 60 });
    const [name] = readdirSync(sample).filter((entry) => entry.endsWith('.parquet'));
    assert.ok(name !== undefined);
    const original = new Uint8Array(await readFile(path.join(sample, name)));
    const metadata = parquetMetadata(original.buffer.slice(original.byteOffset, original.byteOffset + original.byteLength) as ArrayBuffer);
    const dir = await tempDir('rlaif-v-page-damage-');
    // 64 bytes of 0xff inside a page of a text column read with parquet-wasm, and of the image bytes read page by page.
    for (const [column, group] of [['question', 1], ['chosen', 0], ['image.bytes', 1]] as const) {
      const chunk = metadata.row_groups[group]?.columns.find((entry) => entry.meta_data?.path_in_schema.join('.') === column)?.meta_data;
      assert.ok(chunk !== undefined, column);
      const bytes = original.slice();
      // Its first page: the dictionary page where there is one (a data page of dictionary indices may be too small).
      const page = Number(chunk.dictionary_page_offset ?? chunk.data_page_offset);
      assert.ok(page + 94 < Number(chunk.dictionary_page_offset ?? chunk.data_page_offset) + Number(chunk.total_compressed_size), `${column}: the damage stays in its chunk`);
      bytes.fill(0xff, page + 30, page + 94);
      const input = path.join(dir, `in-${column}`);
      await mkdir(input);
      await writeFile(path.join(input, name), bytes);
      const output = path.join(dir, `out-${column}`);
      await assert.rejects(convert({ input: [input], output, numProc: 2 }), (error: unknown) => {
        assert.ok(error instanceof InputError, String(error));
        assert.equal(error.code, 'ERR_PARQUET_DATA');
        assert.equal(error.exitCode, 2);
        assert.match(error.message, new RegExp(`^${path.join(input, name)}: the column ${column.replace('.', '\\.')} of row group ${group} cannot be read \\(.+\\)\\.$`));
        return true;
      });
      assert.ok(!existsSync(output) && !existsSync(`${output}.partial`), `${column}: nothing left`);
    }
  });

  it('end in an output that accounts for every row, or in ERR_PARQUET_DATA with nothing left: never a crash', { timeout: 600_000 }, async () => {
    const sample = await sampleDir(120, { files: 1, rowGroupSize: 60 });
    const [name] = readdirSync(sample).filter((entry) => entry.endsWith('.parquet'));
    assert.ok(name !== undefined);
    const original = new Uint8Array(await readFile(path.join(sample, name)));
    const dir = await tempDir('rlaif-v-page-fuzz-');
    const random = createRandom(2026);
    const outcomes = { converted: 0, refused: 0 };
    for (let round = 0; round < Number(process.env.FUZZ_ROUNDS ?? 30); round++) {
      const { bytes, what } = mutate(original, random);
      const input = path.join(dir, `in-${round}`);
      await mkdir(input);
      await writeFile(path.join(input, name), bytes);
      const output = path.join(dir, `out-${round}`);
      const result = await runCli(['convert', '-i', input, '-o', output, '--num-proc', '2', '--max-reject-fraction', '1', '--quiet']);
      const context = `round ${round}, ${what}: exit ${result.code}\n${result.stderr}`;
      if (process.env.FUZZ_SHOW !== undefined) console.log(`# ${what} -> ${result.code}: ${result.stderr.trim().replaceAll(dir, '')}`);
      assert.doesNotMatch(result.stderr, /unexpected error|RuntimeError: unreachable\n|\n\s+at /, context);
      assert.ok(!existsSync(`${output}.partial`), `nothing left behind: ${context}`);
      if (result.code === 0) {
        const report = await readJson<ConvertReport>(path.join(output, 'report.json'));
        assert.equal(report.output.rows + report.rejected.rows, report.input.rows, context);
        outcomes.converted++;
      } else {
        assert.equal(result.code, 2, context);
        assert.match(result.stderr, new RegExp(`${name}: .*row group \\d cannot be read`), context);
        assert.ok(!existsSync(output), context);
        outcomes.refused++;
      }
    }
    console.log(`# ${outcomes.converted + outcomes.refused} damaged copies: ${outcomes.converted} converted with every row accounted for, ${outcomes.refused} refused as damaged data`);
    assert.ok(outcomes.refused > 0, 'some damage is refused');
  });
});
