import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { readImageHeader } from '../../src/image/image-header.js';
import { prepareImage } from '../../src/image/prepare-image.js';
import { reencodeJpeg } from '../../src/image/turbo-jpeg.js';
import { imageDistance, makeImage } from '../support/fixtures.js';

const JPEG_75 = { mode: 'jpeg', quality: 75, maxSide: null, maxPixels: 89_478_485 } as const;

async function reencoded(bytes: Uint8Array): Promise<Uint8Array | null> {
  const header = readImageHeader(bytes);
  assert.ok(header !== null);
  return reencodeJpeg(bytes, header, 75);
}

describe('reencodeJpeg (libjpeg-turbo)', () => {
  it('re-encodes a plain colour JPEG as a 4:2:0 JPEG of the same size and picture', async () => {
    const source = await makeImage(96, 64);
    const out = await reencoded(source);
    assert.ok(out !== null);
    const metadata = await sharp(out).metadata();
    assert.deepEqual([metadata.format, metadata.width, metadata.height, metadata.channels, metadata.chromaSubsampling], ['jpeg', 96, 64, 3, '4:2:0']);
    assert.ok((await imageDistance(source, out)) < 6, 'the same picture');
    // What a conversion with --images jpeg writes for it.
    assert.deepEqual(await prepareImage(source, JPEG_75), { ok: true, bytes: out, reencoded: true });
  });

  it('keeps a grey JPEG grey', async () => {
    const source = new Uint8Array(await sharp(await makeImage(40, 40)).toColourspace('b-w').jpeg().toBuffer());
    const out = await reencoded(source);
    assert.ok(out !== null);
    assert.equal((await sharp(out).metadata()).channels, 1);
  });

  it('declines what libjpeg-turbo warns about or what is not plain, and sharp then decides as before', async () => {
    const source = await makeImage(96, 64);
    const cut = source.subarray(0, Math.floor(source.byteLength * 0.6));
    assert.equal(await reencoded(cut), null);
    const prepared = await prepareImage(cut, JPEG_75);
    assert.equal(prepared.ok, false);
    const cmyk = new Uint8Array(await sharp(source).toColourspace('cmyk').jpeg().toBuffer());
    const header = readImageHeader(cmyk);
    assert.ok(header === null || !header.plain);
    if (header !== null) assert.equal(await reencodeJpeg(cmyk, header, 75), null);
    const png = await makeImage(8, 8, (image) => image.png());
    const pngHeader = readImageHeader(png);
    assert.ok(pngHeader !== null);
    assert.equal(await reencodeJpeg(png, pngHeader, 75), null);
  });
});
