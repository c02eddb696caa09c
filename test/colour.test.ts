/**
 * Colour as Python users see it: a CMYK JPEG without an ICC profile (as Pillow writes one: Adobe-inverted) comes out
 * as Pillow's `Image.convert("RGB")` makes it, pixel for pixel.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { pythonWithDatasets, run } from '../src/bench/python-env.js';
import type { ImageMode } from '../src/image/image-policy.js';
import { prepareImage } from '../src/image/prepare-image.js';
import { tempDir } from './fixtures.js';

/** Writes an untagged CMYK JPEG with Pillow (smooth ramps of every ink, so JPEG loss stays small) and its RGB. */
const MAKE = String.raw`
import sys
from PIL import Image
width, height = 96, 64
image = Image.new("CMYK", (width, height))
image.putdata([((x * 255) // width, (y * 255) // height, ((x + y) * 127) // (width + height), (x * y * 255) // (width * height))
               for y in range(height) for x in range(width)])
image.save(sys.argv[1], format="JPEG", quality=95)
with Image.open(sys.argv[1]) as source:
    assert source.mode == "CMYK" and "icc_profile" not in source.info
    open(sys.argv[2], "wb").write(source.convert("RGB").tobytes())
`;

async function rgbOf(bytes: Uint8Array): Promise<Buffer> {
  return sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer();
}

describe('colour', () => {
  it('turns an untagged CMYK JPEG into the RGB Pillow makes of it', async (t) => {
    const python = await pythonWithDatasets();
    if ('skip' in python) {
      console.log(`# skipping the CMYK comparison with Pillow: ${python.skip}`);
      t.skip(python.skip);
      return;
    }
    const dir = await tempDir('rlaif-v-colour-');
    const script = path.join(dir, 'make.py');
    await writeFile(script, MAKE);
    const [jpeg, expected] = [path.join(dir, 'cmyk.jpg'), path.join(dir, 'rgb.raw')];
    await run(python.python, [script, jpeg, expected]);
    const source = new Uint8Array(await readFile(jpeg));
    const pillow = await readFile(expected);
    const policy = (mode: ImageMode) => ({ mode, quality: 95, maxSide: null, maxPixels: 89_478_485 });

    // PNG out is lossless: every pixel as Pillow has it.
    const png = await prepareImage(source, policy('png'));
    assert.ok(png.ok);
    const exact = await rgbOf(png.bytes);
    assert.equal(exact.length, pillow.length);
    let worst = 0;
    for (let i = 0; i < exact.length; i++) worst = Math.max(worst, Math.abs((exact[i] ?? 0) - (pillow[i] ?? 0)));
    assert.equal(worst, 0, 'largest difference from Pillow, of 255');

    // Keep mode re-encodes it as JPEG (quality 95): only JPEG's own loss apart from Pillow.
    const kept = await prepareImage(source, policy('keep'));
    assert.ok(kept.ok && kept.reencoded);
    const lossy = await rgbOf(kept.bytes);
    let total = 0;
    for (let i = 0; i < lossy.length; i++) total += Math.abs((lossy[i] ?? 0) - (pillow[i] ?? 0));
    assert.ok(total / lossy.length < 2, `mean difference ${(total / lossy.length).toFixed(2)} of 255`);
  });
});
