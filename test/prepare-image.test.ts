import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import type { ImagePolicy } from '../src/image/image-policy.js';
import { prepareImage } from '../src/image/prepare-image.js';
import { imageDistance, makeImage } from './fixtures.js';

const keep: ImagePolicy = { mode: 'keep', quality: 90, maxSide: null, maxPixels: 89_478_485 };

async function prepared(bytes: Uint8Array, policy: ImagePolicy = keep): Promise<Uint8Array> {
  const result = await prepareImage(bytes, policy);
  assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.message}`);
  return result.bytes;
}

describe('prepareImage in keep mode', () => {
  it('passes an 8-bit sRGB JPEG through byte for byte', async () => {
    const jpeg = await makeImage(64, 48);
    const result = await prepareImage(jpeg, keep);
    assert.deepEqual(result, { ok: true, bytes: jpeg, reencoded: false });
  });

  it('passes PNG (RGB, RGBA, palette, grey) and WebP through unchanged', async () => {
    const inputs = [
      await makeImage(40, 30, (image) => image.png()),
      await makeImage(40, 30, (image) => image.png(), 4),
      await makeImage(40, 30, (image) => image.png({ palette: true, colours: 16 })),
      await makeImage(40, 30, (image) => image.toColourspace('b-w').png()),
      await makeImage(40, 30, (image) => image.webp({ quality: 80 })),
    ];
    for (const input of inputs) {
      const result = await prepareImage(input, keep);
      assert.ok(result.ok && !result.reencoded && result.bytes === input);
    }
  });

  it('applies EXIF orientation, so the stored image is upright with no orientation tag', async () => {
    const rotated = await makeImage(64, 32, (image) => image.jpeg().withMetadata({ orientation: 6 }));
    const out = await prepared(rotated);
    const metadata = await sharp(out).metadata();
    assert.equal(metadata.orientation ?? 1, 1);
    assert.deepEqual([metadata.width, metadata.height], [32, 64]);
    assert.equal(metadata.format, 'jpeg');
  });

  it('converts CMYK JPEG to sRGB JPEG', async () => {
    const cmyk = await makeImage(48, 48, (image) => image.toColourspace('cmyk').jpeg());
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    const out = await prepared(cmyk);
    const metadata = await sharp(out).metadata();
    assert.equal(metadata.space, 'srgb');
    assert.equal(metadata.format, 'jpeg');
  });

  it('reduces 16-bit PNG to 8-bit and keeps it close to the original', async () => {
    const deep = await makeImage(48, 48, (image) => image.toColourspace('rgb16').png());
    assert.equal((await sharp(deep).metadata()).depth, 'ushort');
    const out = await prepared(deep);
    assert.equal((await sharp(out).metadata()).depth, 'uchar');
    assert.ok((await imageDistance(deep, out)) < 4);
  });

  it('re-encodes an image with real transparency as PNG and an opaque one as JPEG', async () => {
    const transparent = await makeImage(40, 40, (image) => image.tiff({ compression: 'lzw' }), 4);
    assert.equal((await sharp(await prepared(transparent)).metadata()).format, 'png');
    const opaque = await makeImage(40, 40, (image) => image.tiff({ compression: 'lzw' }));
    assert.equal((await sharp(await prepared(opaque)).metadata()).format, 'jpeg');
  });

  it('shrinks images over maxSide, keeping the aspect ratio', async () => {
    const big = await makeImage(200, 100);
    const out = await prepared(big, { ...keep, maxSide: 50 });
    const metadata = await sharp(out).metadata();
    assert.deepEqual([metadata.width, metadata.height], [50, 25]);
    const small = await makeImage(40, 20);
    assert.equal(await prepared(small, { ...keep, maxSide: 50 }), small);
  });
});

describe('prepareImage in re-encoding modes', () => {
  for (const mode of ['jpeg', 'png', 'webp'] as const) {
    it(`writes every image as ${mode}`, async () => {
      const out = await prepared(await makeImage(32, 32, (image) => image.png()), { ...keep, mode });
      assert.equal((await sharp(out).metadata()).format, mode);
    });
  }

  it('honours quality for jpeg: lower quality, fewer bytes', async () => {
    const input = await makeImage(128, 128, (image) => image.png());
    const low = await prepared(input, { ...keep, mode: 'jpeg', quality: 30 });
    const high = await prepared(input, { ...keep, mode: 'jpeg', quality: 95 });
    assert.ok(low.byteLength < high.byteLength);
  });
});

describe('prepareImage refuses what is not a whole image', () => {
  it('rejects a truncated JPEG whose header still reads', async () => {
    const jpeg = await makeImage(256, 256);
    const truncated = jpeg.subarray(0, Math.floor(jpeg.byteLength * 0.6));
    const result = await prepareImage(truncated, keep);
    assert.equal(result.ok ? 'ok' : result.code, 'corrupt_image');
  });

  it('rejects zero bytes, random bytes and SVG with stable codes', async () => {
    const random = new Uint8Array(1000).map((_, index) => (index * 7919) % 251);
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    const codes = [];
    for (const input of [new Uint8Array(0), random, svg]) {
      const result = await prepareImage(input, keep);
      codes.push(result.ok ? 'ok' : result.code);
    }
    assert.deepEqual(codes, ['empty_image', 'unsupported_image', 'unsupported_image']);
  });

  it('refuses an image over maxPixels before decoding it', async () => {
    const result = await prepareImage(await makeImage(100, 100), { ...keep, maxPixels: 5000 });
    assert.equal(result.ok ? 'ok' : result.code, 'image_too_large');
    assert.match(result.ok ? '' : result.message, /100x100 is 10000 pixels/);
  });
});
