import type { Metadata, Sharp } from 'sharp';
import type { ImagePolicy } from './image-policy.js';
import type { RejectCode } from '../source/source-row.js';
import { checkJpeg } from './check-jpeg.js';
import { checkPng } from './check-png.js';
import { isSrgbProfile, readImageHeader, type ImageHeader } from './image-header.js';
import { reencodeJpeg } from './turbo-jpeg.js';

export type PreparedImage =
  | { ok: true; bytes: Uint8Array; reencoded: boolean }
  /**
   * `lasting` false: libvips failed, which can also be for want of memory: the reject is not kept for later runs (see
   * image-store), only the rejects that the bytes alone decide.
   */
  | { ok: false; code: RejectCode; message: string; lasting?: false };

/** Formats whose bytes can go into the output unchanged: what every image library and `datasets` reads. */
const PASS_THROUGH_FORMATS = new Set(['jpeg', 'png', 'webp']);

/** Raster formats accepted as input (re-encoded unless listed above). SVG, PDF and the like are refused. */
const READABLE_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'avif', 'jp2', 'jxl']);

const JPEG_KEEP_QUALITY = 95;

function needsNormalizing(metadata: Metadata, policy: ImagePolicy): boolean {
  if (!PASS_THROUGH_FORMATS.has(metadata.format ?? '')) return true;
  if (metadata.depth !== 'uchar') return true;
  if (metadata.space !== 'srgb' && metadata.space !== 'b-w') return true;
  if ((metadata.orientation ?? 1) !== 1) return true;
  if ((metadata.pages ?? 1) > 1) return true;
  if (metadata.icc !== undefined && !isSrgbProfile(metadata.icc)) return true;
  if (policy.maxSide !== null && Math.max(metadata.width ?? 0, metadata.height ?? 0) > policy.maxSide) return true;
  return false;
}

function reject(code: RejectCode, message: string): PreparedImage {
  return { ok: false, code, message };
}

/**
 * A reject libvips gave while decoding or encoding, which a want of memory can give too: not kept for later runs.
 * (Reading a header takes no memory to speak of: what it refuses is refused for good.)
 */
function libvipsReject(code: RejectCode, message: string): PreparedImage {
  return { ok: false, code, message, lasting: false };
}

type SharpFunction = typeof import('sharp').default;

let loading: Promise<SharpFunction> | null = null;

/**
 * sharp, loaded on first use: plain JPEGs and PNGs in keep mode never need it, and loading it costs a worker about
 * 0.12 s of CPU. One libvips thread per worker (parallelism comes from the pool); its cache only helps repeated
 * identical pipelines.
 */
function loadSharp(): Promise<SharpFunction> {
  loading ??= import('sharp').then(({ default: sharp }) => {
    sharp.concurrency(1);
    sharp.cache(false);
    return sharp;
  });
  return loading;
}

function decoder(sharp: SharpFunction, bytes: Uint8Array, policy: ImagePolicy): Sharp {
  // failOn 'error' also fails on truncated data; the pixel limit is checked again by libvips itself.
  return sharp(bytes, { failOn: 'error', limitInputPixels: policy.maxPixels, pages: 1 });
}

/**
 * Proves the bytes are a whole image by decoding all of their compressed data. A JPEG decode at 1/8 scale (which skips
 * the inverse DCT but reads every entropy-coded block) measured no faster in this sharp build than a full decode
 * (`npm run bench:decode`: 5.6 against 5.5 ms a 79 KB JPEG), so every image is simply decoded in full.
 */
async function validate(bytes: Uint8Array, policy: ImagePolicy): Promise<void> {
  await decoder(await loadSharp(), bytes, policy).raw().toBuffer();
}

/**
 * A CMYK image without an ICC profile, turned to RGB as Pillow's `Image.convert("RGB")` turns it (what everyone who
 * opens the source in Python sees): R = (255 - C) × (255 - K) / 255, rounded as Pillow rounds, and likewise G and B.
 * libvips would use a generic press profile instead, 18-24/255 off on average. Adobe's inverted CMYK is undone by the
 * JPEG decoder in both. Images with a profile still go through their profile.
 */
async function cmykAsPillowSeesIt(sharp: SharpFunction, pipeline: Sharp): Promise<Sharp> {
  // Kept in CMYK throughout: sharp's default sRGB pipeline would take it through a profile and back.
  const { data, info } = await pipeline.pipelineColourspace('cmyk').toColourspace('cmyk').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 4) return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
  const rgb = Buffer.alloc(info.width * info.height * 3);
  // Pillow's MULDIV255(a, b) = ((a·b + 128) >> 8 + a·b + 128) >> 8.
  const muldiv255 = (a: number, b: number): number => {
    const product = a * b + 128;
    return ((product >> 8) + product) >> 8;
  };
  for (let pixel = 0, at = 0; at < data.length; pixel += 3, at += 4) {
    const white = 255 - (data[at + 3] ?? 0);
    for (let channel = 0; channel < 3; channel++) rgb[pixel + channel] = Math.max(0, white - muldiv255(data[at + channel] ?? 0, white));
  }
  return sharp(rgb, { raw: { width: info.width, height: info.height, channels: 3 } });
}

/** Whether any pixel of an interleaved 8-bit buffer with an alpha channel is not fully opaque. */
function hasTransparency(data: Buffer, channels: number): boolean {
  for (let i = channels - 1; i < data.length; i += channels) if (data[i] !== 255) return true;
  return false;
}

/**
 * Decodes, orients, converts to sRGB (or 8-bit grey), resizes and re-encodes. Keep mode writes JPEG at quality 95,
 * or PNG when the image has real transparency; the other modes write their format at `policy.quality`.
 */
async function reencode(bytes: Uint8Array, metadata: Metadata, policy: ImagePolicy): Promise<Uint8Array> {
  const sharp = await loadSharp();
  let pipeline = decoder(sharp, bytes, policy).rotate();
  if (metadata.space === 'cmyk' && metadata.icc === undefined) pipeline = await cmykAsPillowSeesIt(sharp, pipeline);
  if (policy.maxSide !== null) {
    pipeline.resize({ width: policy.maxSide, height: policy.maxSide, fit: 'inside', withoutEnlargement: true });
  }
  const grey = metadata.space === 'b-w' && !metadata.isPalette;
  pipeline.toColourspace(grey ? 'b-w' : 'srgb');
  const quality = policy.mode === 'keep' ? JPEG_KEEP_QUALITY : policy.quality;
  if (metadata.hasAlpha !== true) {
    // No alpha channel, so no transparency to look for: decode and encode in one pipeline.
    return new Uint8Array(await encode(pipeline, policy.mode === 'keep' ? 'jpeg' : policy.mode, quality, policy.mode === 'keep').toBuffer());
  }
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  const alpha = info.channels === 2 || info.channels === 4;
  const transparent = alpha && hasTransparency(data, info.channels);
  let out = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
  if (alpha && !transparent) out = out.removeAlpha();
  const format = policy.mode === 'keep' ? (transparent ? 'png' : 'jpeg') : policy.mode;
  if (format === 'jpeg' && transparent) out = out.flatten({ background: '#ffffff' });
  return new Uint8Array(await encode(out, format, quality, policy.mode === 'keep').toBuffer());
}

/**
 * `--images jpeg` encodes as Pillow does by default (what the Python script's output holds): without optimised Huffman
 * tables, which on the bench sample made files 8% larger and the re-encode 30% faster (10.0 -> 7.1 ms an image at
 * quality 75). Keep mode's rare normalized images keep the smaller optimised coding.
 */
function encode(image: Sharp, format: 'jpeg' | 'png' | 'webp', quality: number, optimiseCoding: boolean): Sharp {
  if (format === 'png') return image.png();
  if (format === 'webp') return image.webp({ quality });
  return image.jpeg({ quality, optimiseCoding });
}

function tooLarge(width: number, height: number, policy: ImagePolicy): PreparedImage | null {
  const pixels = width * height;
  if (pixels <= policy.maxPixels) return null;
  return reject('image_too_large', `${width}x${height} is ${pixels} pixels, over the limit of ${policy.maxPixels} (--max-pixels)`);
}

/**
 * The fast path of keep mode, for the plain JPEGs and PNGs that make up nearly all of the source: their headers are
 * read here, and their data checked by libjpeg-turbo (WebAssembly) or node:zlib rather than decoded by sharp, which
 * costs three to six times as much. `null` when the image is not one of those, and sharp must look at it.
 */
function prepareByHeader(bytes: Uint8Array, header: ImageHeader, policy: ImagePolicy): PreparedImage | null {
  const large = tooLarge(header.width, header.height, policy);
  if (large !== null) return large;
  if (policy.mode !== 'keep' || !header.plain) return null;
  if (policy.maxSide !== null && Math.max(header.width, header.height) > policy.maxSide) return null;
  const check = header.png === undefined ? checkJpeg(bytes) : checkPng(bytes, header.width, header.height, header.png);
  if (!check.ok) return reject('corrupt_image', `the ${header.format} image does not decode: ${check.message}`);
  return { ok: true, bytes, reencoded: false };
}

/**
 * Applies the image policy to one image's bytes: refuses what is not a whole raster image, passes normal images
 * through untouched in `keep` mode, and re-encodes the rest. Never throws for bad image data: it returns a reject.
 */
export async function prepareImage(bytes: Uint8Array, policy: ImagePolicy): Promise<PreparedImage> {
  if (bytes.byteLength === 0) return reject('empty_image', 'the image has zero bytes');
  const header = readImageHeader(bytes);
  const fast = header === null ? null : prepareByHeader(bytes, header, policy);
  if (fast !== null) return fast;
  // A plain JPEG to JPEG with no resizing: libjpeg-turbo itself (see turbo-jpeg.ts); sharp where it declines.
  if (header !== null && policy.mode === 'jpeg' && (policy.maxSide === null || Math.max(header.width, header.height) <= policy.maxSide)) {
    const reencoded = await reencodeJpeg(bytes, header, policy.quality);
    if (reencoded !== null) return { ok: true, bytes: reencoded, reencoded: true };
  }
  let metadata: Metadata;
  try {
    metadata = await (await loadSharp())(bytes, { failOn: 'none', limitInputPixels: false }).metadata();
  } catch (error) {
    return reject('unsupported_image', `not a readable image: ${libvipsReason(error)}`);
  }
  const format = metadata.format ?? 'unknown';
  if (!READABLE_FORMATS.has(format)) {
    return reject('unsupported_image', `image format ${format} is not accepted (expected a raster image such as JPEG or PNG)`);
  }
  const large = tooLarge(metadata.width ?? 0, metadata.height ?? 0, policy);
  if (large !== null) return large;
  try {
    if (policy.mode === 'keep' && !needsNormalizing(metadata, policy)) {
      await validate(bytes, policy);
      return { ok: true, bytes, reencoded: false };
    }
    return { ok: true, bytes: await reencode(bytes, metadata, policy), reencoded: true };
  } catch (error) {
    return libvipsReject('corrupt_image', `the ${format} image does not decode: ${libvipsReason(error)}`);
  }
}

/**
 * What sharp said of an image it could not read, without libvips' error log: libvips keeps one log for the process,
 * and sharp reports all of it, so a message held what other images had failed with before, in whatever order the
 * threads ran (two runs wrote different rejects files). Only sharp's own part is kept: the same image always gets
 * the same message.
 */
function libvipsReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const own = message.split('\n')[0]?.split(':')[0]?.trim() ?? '';
  return own === '' || own.startsWith('Vips') ? 'libvips cannot decode it' : own;
}

/**
 * Whether bytes are a whole image that decodes, as a reader of an output would find it: plain JPEGs and PNGs by the
 * fast check, anything else decoded by sharp. Never throws.
 */
export async function checkImage(bytes: Uint8Array): Promise<{ ok: true } | { ok: false; message: string }> {
  if (bytes.byteLength === 0) return { ok: false, message: 'the image has zero bytes' };
  const header = readImageHeader(bytes);
  if (header !== null && header.width * header.height > PILLOW_BOMB_PIXELS) {
    return { ok: false, message: `${header.width}x${header.height} is over the ${PILLOW_BOMB_PIXELS} pixels Pillow refuses to open` };
  }
  if (header !== null && header.plain) {
    const check = header.png === undefined ? checkJpeg(bytes) : checkPng(bytes, header.width, header.height, header.png);
    return check.ok ? check : { ok: false, message: `the ${header.format} image does not decode: ${check.message}` };
  }
  const sharp = await loadSharp();
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { failOn: 'none', limitInputPixels: false }).metadata();
  } catch (error) {
    return { ok: false, message: `not a readable image: ${libvipsReason(error)}` };
  }
  // What this format holds and what readers of it (Pillow, datasets) all open: nothing else.
  if (!PASS_THROUGH_FORMATS.has(metadata.format ?? '')) return { ok: false, message: `a ${metadata.format ?? 'unknown'} image, not JPEG, PNG or WebP` };
  if ((metadata.width ?? 0) * (metadata.height ?? 0) > PILLOW_BOMB_PIXELS) {
    return { ok: false, message: `${metadata.width}x${metadata.height} is over the ${PILLOW_BOMB_PIXELS} pixels Pillow refuses to open` };
  }
  try {
    await sharp(bytes, { failOn: 'error', limitInputPixels: false, pages: 1 }).raw().toBuffer();
    return { ok: true };
  } catch (error) {
    return { ok: false, message: `the ${metadata.format} image does not decode: ${libvipsReason(error)}` };
  }
}

/** Pillow raises DecompressionBombError past twice its warning limit of 89,478,485 pixels. */
const PILLOW_BOMB_PIXELS = 2 * 89_478_485;
