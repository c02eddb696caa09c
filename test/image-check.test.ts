/**
 * The fast image check (libjpeg-turbo in WebAssembly for JPEG, node:zlib for PNG) against full decoders: sharp's
 * full decode and Pillow's `Image.open(...).load()`, what a trainer's data loader runs. Over the bad-input corpus,
 * the bundled sample and a few hundred seeded mutants, no image Pillow refuses may pass, and every image the fast
 * path passes must also decode in full in sharp.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { pythonWithDatasets, run } from '../src/bench/python-env.js';
import { imageCases } from '../scripts/bad-corpus.js';
import { mutateImages } from '../scripts/mutate-images.js';
import type { ImagePolicy } from '../src/image/image-policy.js';
import { checkJpeg } from '../src/image/check-jpeg.js';
import { readImageHeader } from '../src/image/image-header.js';
import { prepareImage } from '../src/image/prepare-image.js';
import { oneOfEachKind, sampleImages, tempDir } from './fixtures.js';

const KEEP: ImagePolicy = { mode: 'keep', quality: 90, maxSide: null, maxPixels: 89_478_485 };

const PILLOW = String.raw`
import json, os, sys
from PIL import Image
verdicts = {}
for name in sorted(os.listdir(sys.argv[1])):
    try:
        with Image.open(os.path.join(sys.argv[1], name)) as image:
            image.load()
        verdicts[name] = None
    except Exception as error:
        verdicts[name] = f"{type(error).__name__}: {error}"
print(json.dumps(verdicts))
`;

interface Subject {
  name: string;
  bytes: Uint8Array;
}

async function sharpDecodes(bytes: Uint8Array): Promise<boolean> {
  try {
    await sharp(bytes, { failOn: 'error', limitInputPixels: KEEP.maxPixels }).raw().toBuffer();
    return true;
  } catch {
    return false;
  }
}

describe('the fast image check', () => {
  const subjects: Subject[] = [];
  let seeds: Uint8Array[] = [];

  before(async () => {
    const sample = await sampleImages();
    for (const [i, bytes] of sample.entries()) subjects.push({ name: `sample-${i}`, bytes });
    for (const entry of await imageCases()) if (entry.bytes !== null) subjects.push({ name: `corpus-${entry.name}`, bytes: entry.bytes });
    // Mutate one image of each kind the sample holds: baseline, progressive and grey JPEG; RGB, RGBA, grey, palette PNG.
    seeds = await oneOfEachKind(sample);
    for (const mutant of mutateImages(seeds, 420, 7)) subjects.push({ name: `mutant-${mutant.name}`, bytes: mutant.bytes });
  });

  it('takes the fast path for the sample images, and passes them all', async () => {
    const sample = subjects.filter((subject) => subject.name.startsWith('sample-'));
    assert.ok(sample.length > 50);
    for (const { name, bytes } of sample) {
      assert.equal(readImageHeader(bytes)?.plain, true, name);
      assert.deepEqual(await prepareImage(bytes, KEEP), { ok: true, bytes, reencoded: false }, name);
    }
  });

  it('reports what libjpeg found wrong, and recovers after a fatal error', () => {
    const jpeg = seeds.find((bytes) => bytes[0] === 0xff) ?? new Uint8Array();
    const truncated = checkJpeg(jpeg.subarray(0, jpeg.length >> 1));
    assert.deepEqual(truncated, { ok: false, message: 'Premature end of JPEG file' });
    const fatal = checkJpeg(new Uint8Array([0xff, 0xd8, 0xff, 0xc4, 0x00, 0x02, 0xff, 0xd9]));
    assert.equal(fatal.ok, false);
    assert.match(fatal.ok ? '' : fatal.message, /JPEG|marker|Huffman|image/i);
    assert.deepEqual(checkJpeg(jpeg), { ok: true });
  });

  it('passes no image that sharp cannot decode in full', async () => {
    const disagreements: string[] = [];
    let passed = 0;
    for (const { name, bytes } of subjects) {
      const prepared = await prepareImage(bytes, KEEP);
      if (!prepared.ok || prepared.reencoded) continue;
      passed++;
      if (!(await sharpDecodes(bytes))) disagreements.push(name);
    }
    assert.ok(passed > 200, `only ${passed} images passed`);
    assert.deepEqual(disagreements, []);
  });

  it('passes no image that Pillow refuses', async (t) => {
    const python = await pythonWithDatasets();
    if ('skip' in python) {
      console.log(`# skipping the Pillow comparison: ${python.skip}`);
      t.skip(python.skip);
      return;
    }
    const dir = await tempDir('rlaif-v-images-');
    const names = subjects.map((_, i) => `${String(i).padStart(4, '0')}.img`);
    await Promise.all(subjects.map((subject, i) => writeFile(path.join(dir, names[i] ?? ''), subject.bytes)));
    const script = path.join(dir, '..', `pillow-${process.pid}.py`);
    await writeFile(script, PILLOW);
    const { stdout } = await run(python.python, [script, dir], { maxBuffer: 64 * 2 ** 20 });
    const verdicts = JSON.parse(stdout) as Record<string, string | null>;
    const passedButRefused: string[] = [];
    let refused = 0;
    let strict = 0;
    for (const [i, subject] of subjects.entries()) {
      const pillow = verdicts[names[i] ?? ''];
      const prepared = await prepareImage(subject.bytes, KEEP);
      if (pillow !== null && pillow !== undefined) {
        refused++;
        if (prepared.ok) passedButRefused.push(`${subject.name}: ${pillow}`);
      } else if (!prepared.ok && subject.name.startsWith('mutant-')) {
        strict++;
      }
    }
    console.log(`# Pillow refused ${refused} of ${subjects.length} images; the check refused ${strict} more mutants that Pillow loads`);
    assert.ok(refused > 100, `the mutants should include many that Pillow refuses, got ${refused}`);
    assert.deepEqual(passedButRefused, []);
  });
});
