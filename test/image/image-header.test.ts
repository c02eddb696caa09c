import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { picture } from '../../scripts/bad-corpus.js';
import { readImageHeader } from '../../src/image/image-header.js';

const bytes = async (image: ReturnType<typeof picture>): Promise<Uint8Array> => new Uint8Array(await image.toBuffer());

describe('readImageHeader', () => {
  it('reads the size of a plain JPEG and PNG, and calls them plain', async () => {
    assert.deepEqual(readImageHeader(await bytes(picture().jpeg())), { format: 'jpeg', width: 48, height: 32, components: 3, plain: true });
    const png = readImageHeader(await bytes(picture(4).png()));
    assert.deepEqual([png?.format, png?.width, png?.height, png?.plain, png?.png], ['png', 48, 32, true, { bitDepth: 8, colorType: 6, interlaced: false }]);
  });

  it('calls a rotated JPEG, a CMYK JPEG and a 16-bit PNG not plain', async () => {
    assert.equal(readImageHeader(await bytes(picture().jpeg().withMetadata({ orientation: 6 })))?.plain, false);
    assert.equal(readImageHeader(await bytes(picture().toColourspace('cmyk').jpeg()))?.plain, false);
    assert.equal(readImageHeader(await bytes(picture().toColourspace('rgb16').png()))?.plain, false);
  });

  it('keeps an sRGB profile plain and a foreign one not', async () => {
    assert.equal(readImageHeader(await bytes(picture().jpeg().withIccProfile('srgb')))?.plain, true);
    assert.equal(readImageHeader(await bytes(picture().jpeg().withIccProfile('p3')))?.plain, false);
    assert.equal(readImageHeader(await bytes(picture().png().withIccProfile('p3')))?.plain, false);
  });

  it('gives up (null) on what it is not sure of: other formats, cut headers, an EXIF chunk in a PNG', async () => {
    assert.equal(readImageHeader(await bytes(picture().webp())), null);
    const jpeg = await bytes(picture().jpeg());
    assert.equal(readImageHeader(jpeg.subarray(0, 40)), null);
    const png = Buffer.from(await bytes(picture().png()));
    const exif = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.from('eXIf'), Buffer.from([0, 0, 0, 0])]);
    assert.equal(readImageHeader(new Uint8Array(Buffer.concat([png.subarray(0, 33), exif, png.subarray(33)]))), null);
  });
});
