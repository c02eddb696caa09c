/**
 * The whole pipeline over a seeded fuzz corpus: mutants of every accepted format (baseline, progressive and grey
 * JPEG; RGB, RGBA, grey and palette PNG; lossy and lossless WebP; GIF), aimed at the data and at the structure
 * (marker segments, Huffman and quantization tables, chunk lengths and CRCs). The run must finish with every row
 * accounted for, and every image it writes must load in Pillow, what a trainer's data loader runs.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { pythonWithDatasets, run } from '../src/bench/python-env.js';
import { mutateImages, mutateStructure } from '../scripts/mutate-images.js';
import { convert } from '../src/run/convert.js';
import { writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import { oneOfEachKind, sampleImages, sourceRow, tempDir } from './fixtures.js';

/** Loads every image of the given parquet files' `images` (output) or `image` (source) column in Pillow. */
const PILLOW = String.raw`
import io, json, sys
import pyarrow.parquet as pq
from PIL import Image
column, files = sys.argv[1], sys.argv[2:]
loaded, refused = 0, []
for path in files:
    values = pq.read_table(path, columns=[column]).column(column).to_pylist()
    for row, value in enumerate(values):
        images = value if column == "images" else [value]
        for image in images:
            try:
                with Image.open(io.BytesIO(image["bytes"])) as opened:
                    opened.load()
                loaded += 1
            except Exception as error:
                refused.append(f"{path}#{row}: {type(error).__name__}: {error}")
print(json.dumps({"loaded": loaded, "refused": refused}))
`;

/** One seed image of each kind: from the bundled sample (JPEG and PNG kinds), and WebP and GIF made from it. */
async function seeds(): Promise<Uint8Array[]> {
  const kinds = await oneOfEachKind(await sampleImages());
  const photo = kinds.find((bytes) => bytes[0] === 0xff) ?? new Uint8Array();
  return [
    ...kinds,
    new Uint8Array(await sharp(photo).webp({ quality: 80 }).toBuffer()),
    new Uint8Array(await sharp(photo).webp({ lossless: true }).toBuffer()),
    new Uint8Array(await sharp(photo).gif().toBuffer()),
  ];
}

describe('a fuzz corpus through the whole pipeline', () => {
  it('accounts for every row and writes no image that Pillow cannot load', { timeout: 600_000 }, async (t) => {
    const python = await pythonWithDatasets();
    if ('skip' in python) {
      console.log(`# skipping the fuzz corpus (it needs Pillow to judge the output): ${python.skip}`);
      t.skip(python.skip);
      return;
    }
    const images = await seeds();
    assert.ok(images.length >= 9, `${images.length} kinds of seed image`);
    const perSeed = 100;
    const mutants = [...mutateImages(images, perSeed * images.length, 21), ...mutateStructure(images, perSeed * images.length, 22)];
    const dir = await tempDir('rlaif-v-fuzz-');
    const input = path.join(dir, 'fuzz.parquet');
    await writeSourceFile(input, mutants.map((mutant, i) => sourceRow(i, { bytes: mutant.bytes, path: null })), 500);

    const report = await convert({ input: [input], output: path.join(dir, 'out'), maxRejectFraction: 1, numProc: 2, imageTimeout: 60 });
    assert.equal(report.input.rows, mutants.length);
    assert.equal(report.output.rows + report.rejected.rows, mutants.length);

    const script = path.join(dir, 'pillow.py');
    await writeFile(script, PILLOW);
    const shards = (await readdir(path.join(dir, 'out', 'data'))).map((name) => path.join(dir, 'out', 'data', name));
    const judge = async (column: string, files: string[]): Promise<{ loaded: number; refused: string[] }> =>
      JSON.parse((await run(python.python, [script, column, ...files], { maxBuffer: 64 * 2 ** 20 })).stdout) as { loaded: number; refused: string[] };
    const source = await judge('image', [input]);
    const output = await judge('images', shards);
    console.log(
      `# ${mutants.length} mutants of ${images.length} seed images: Pillow loads ${source.loaded}; ` +
        `the tool kept ${report.output.rows} (${report.images.reencoded} re-encoded) and rejected ${report.rejected.rows}`,
    );
    assert.equal(output.loaded, report.output.rows);
    assert.deepEqual(output.refused, []);
  });
});
