import { inflateSync } from 'node:zlib';

/**
 * What the headers of a JPEG or PNG say, read without a decoder: enough to tell whether the image can pass through
 * unchanged (the fast path) or must go to sharp. Anything this reader does not fully understand gives `null`, and
 * the image takes sharp's path exactly as before; so a wrong guess here can only cost time, never change an output.
 */
export interface ImageHeader {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  /**
   * True when the image is 8-bit (or less, for PNG), grey or RGB (palette included), upright (no EXIF orientation
   * other than 1) and either without an ICC profile or with an sRGB or grey one: what keep mode passes through.
   */
  plain: boolean;
  /** JPEG only: the frame's colour components (1 grey, 3 colour, 4 CMYK). */
  components?: number;
  /** PNG only: the fields of IHDR the check needs. */
  png?: PngLayout;
}

export interface PngLayout {
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

const latin1 = new TextDecoder('latin1');
const utf16 = new TextDecoder('utf-16be');

/**
 * Whether an embedded ICC profile is an sRGB (or grey) profile, judged by its description; such images need no
 * colour conversion. A crude but safe test: a profile we cannot recognise leads to conversion, never to loss.
 */
export function isSrgbProfile(icc: Uint8Array): boolean {
  const text = latin1.decode(icc) + utf16.decode(icc.subarray(0, icc.byteLength - (icc.byteLength % 2)));
  return /sRGB|IEC61966-2[.-]1|Gray|Grey/i.test(text);
}

function u16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

function u32(bytes: Uint8Array, at: number): number {
  return (((bytes[at] ?? 0) << 24) | ((bytes[at + 1] ?? 0) << 16) | ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0)) >>> 0;
}

function startsWith(bytes: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** The orientation tag of an EXIF block (TIFF header onwards), 1 when absent, or null when the block does not parse. */
function exifOrientation(tiff: Uint8Array): number | null {
  const little = startsWith(tiff, 0, 'II');
  if (!little && !startsWith(tiff, 0, 'MM')) return null;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  if (tiff.byteLength < 8 || view.getUint16(2, little) !== 42) return null;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.byteLength) return null;
  const entries = view.getUint16(ifd, little);
  if (ifd + 2 + entries * 12 > tiff.byteLength) return null;
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (view.getUint16(entry, little) !== 0x0112) continue;
    // SHORT, count 1: the value sits in the first two bytes of the value field.
    if (view.getUint16(entry + 2, little) !== 3 || view.getUint32(entry + 4, little) !== 1) return null;
    return view.getUint16(entry + 8, little);
  }
  return 1;
}

/** SOF markers of the Huffman and arithmetic DCT processes libjpeg decodes (baseline, extended, progressive). */
const DCT_FRAMES = new Set([0xc0, 0xc1, 0xc2, 0xc9, 0xca]);

function jpegHeader(bytes: Uint8Array): ImageHeader | null {
  let at = 2;
  let frame: { precision: number; height: number; width: number; components: number } | null = null;
  let exif: number | null | undefined;
  const icc: Uint8Array[] = [];
  let iccChunks = 0;
  while (at + 4 <= bytes.byteLength) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1] ?? 0;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0xd9 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) return null;
    const length = u16(bytes, at + 2);
    const body = at + 4;
    const end = at + 2 + length;
    if (length < 2 || end > bytes.byteLength) return null;
    if (marker === 0xda) {
      if (frame === null) return null;
      const plainFrame = frame.precision === 8 && (frame.components === 1 || frame.components === 3);
      if (icc.length !== iccChunks) return null;
      for (let i = 0; i < icc.length; i++) if (icc[i] === undefined) return null; // a chunk missing
      const profile = icc.length === 0 ? null : new Uint8Array(Buffer.concat(icc));
      const upright = exif === undefined || exif === 1;
      return {
        format: 'jpeg',
        width: frame.width,
        height: frame.height,
        components: frame.components,
        plain: plainFrame && upright && exif !== null && (profile === null || isSrgbProfile(profile)),
      };
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (frame !== null || !DCT_FRAMES.has(marker) || length < 8) return null;
      frame = { precision: bytes[body] ?? 0, height: u16(bytes, body + 1), width: u16(bytes, body + 3), components: bytes[body + 5] ?? 0 };
      if (frame.width === 0 || frame.height === 0) return null; // a height set later by DNL: leave it to sharp
    } else if (marker === 0xe1 && startsWith(bytes, body, 'Exif\0\0')) {
      if (exif !== undefined) return null; // two EXIF blocks: which one a reader honours is not ours to guess
      exif = exifOrientation(bytes.subarray(body + 6, end));
    } else if (marker === 0xe2 && startsWith(bytes, body, 'ICC_PROFILE\0') && length >= 16) {
      const sequence = bytes[body + 12] ?? 0;
      const count = bytes[body + 13] ?? 0;
      if (sequence === 0 || sequence > count || (iccChunks !== 0 && count !== iccChunks) || icc[sequence - 1] !== undefined) return null;
      iccChunks = count;
      icc[sequence - 1] = bytes.subarray(body + 14, end);
    }
    at = end;
  }
  return null;
}

/** Channels of each PNG colour type, and the bit depths the PNG specification allows it. */
const PNG_TYPES = new Map<number, { channels: number; depths: number[] }>([
  [0, { channels: 1, depths: [1, 2, 4, 8, 16] }],
  [2, { channels: 3, depths: [8, 16] }],
  [3, { channels: 1, depths: [1, 2, 4, 8] }],
  [4, { channels: 2, depths: [8, 16] }],
  [6, { channels: 4, depths: [8, 16] }],
]);

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Channels of a PNG colour type. */
export function pngChannels(colorType: number): number {
  return PNG_TYPES.get(colorType)?.channels ?? 0;
}

function pngHeader(bytes: Uint8Array): ImageHeader | null {
  if (bytes.byteLength < 33 || u32(bytes, 8) !== 13 || !startsWith(bytes, 12, 'IHDR')) return null;
  const width = u32(bytes, 16);
  const height = u32(bytes, 20);
  const bitDepth = bytes[24] ?? 0;
  const colorType = bytes[25] ?? 0;
  const type = PNG_TYPES.get(colorType);
  if (width === 0 || height === 0 || type === undefined || !type.depths.includes(bitDepth)) return null;
  if (bytes[26] !== 0 || bytes[27] !== 0 || (bytes[28] !== 0 && bytes[28] !== 1)) return null;
  let plain = bitDepth <= 8;
  // Chunks before the image data that change how it is read: a profile, an orientation, animation frames.
  for (let at = 33; at + 8 <= bytes.byteLength; ) {
    const length = u32(bytes, at);
    const type4 = at + 4;
    if (startsWith(bytes, type4, 'IDAT') || startsWith(bytes, type4, 'IEND')) break;
    if (startsWith(bytes, type4, 'eXIf') || startsWith(bytes, type4, 'acTL')) return null;
    if (startsWith(bytes, type4, 'iCCP')) {
      const data = bytes.subarray(at + 8, Math.min(at + 8 + length, bytes.byteLength));
      const nul = data.indexOf(0);
      if (nul < 0 || data[nul + 1] !== 0) return null;
      let profile: Uint8Array;
      try {
        profile = inflateSync(data.subarray(nul + 2));
      } catch {
        return null;
      }
      plain &&= isSrgbProfile(profile);
    }
    at += 12 + length;
  }
  return { format: 'png', width, height, plain, png: { bitDepth, colorType, interlaced: bytes[28] === 1 } };
}

/** Reads a JPEG's or PNG's header; `null` for any other format, or a header this reader is not sure of. */
export function readImageHeader(bytes: Uint8Array): ImageHeader | null {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return jpegHeader(bytes);
  if (PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) return pngHeader(bytes);
  return null;
}
