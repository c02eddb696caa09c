import { crc32, inflateSync } from 'node:zlib';
import type { CheckResult } from './check-jpeg.js';
import { pngChannels, type PngLayout } from './image-header.js';

/** Adam7's passes: first column and row, then column and row steps. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** The rows of the image data, each as [row count, bytes a row without its filter byte]. */
function scanlines(width: number, height: number, layout: PngLayout): [number, number][] {
  const bits = pngChannels(layout.colorType) * layout.bitDepth;
  const rowBytes = (columns: number): number => Math.ceil((columns * bits) / 8);
  if (!layout.interlaced) return [[height, rowBytes(width)]];
  const passes: [number, number][] = [];
  for (const [x0, y0, dx, dy] of ADAM7) {
    const columns = Math.ceil((width - x0) / dx);
    const rows = Math.ceil((height - y0) / dy);
    if (columns > 0 && rows > 0) passes.push([rows, rowBytes(columns)]);
  }
  return passes;
}

function bad(message: string): CheckResult {
  return { ok: false, message };
}

/**
 * Proves a PNG decodes in full without making its pixels: every chunk is whole and its CRC right, the chunks come
 * in a legal order, the image data inflates (node:zlib) to exactly the size its header implies, and every row's
 * filter type is one PNG defines. Unfiltering, the one step skipped, cannot fail.
 */
export function checkPng(bytes: Uint8Array, width: number, height: number, layout: PngLayout): CheckResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data: Uint8Array[] = [];
  let palette = false;
  let ended = false;
  let dataEnded = false;
  for (let at = 8; !ended; ) {
    if (at + 12 > bytes.byteLength) return bad(`the file ends inside a chunk at byte ${at} (truncated)`);
    const length = view.getUint32(at);
    const end = at + 12 + length;
    if (end > bytes.byteLength) return bad(`the file ends inside a chunk at byte ${at} (truncated)`);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== view.getUint32(at + 8 + length)) return bad(`chunk ${type} at byte ${at} has a wrong CRC`);
    if (type === 'IDAT') {
      if (dataEnded) return bad('IDAT chunks are not consecutive');
      if (layout.colorType === 3 && !palette) return bad('a palette image has no PLTE chunk before its data');
      data.push(bytes.subarray(at + 8, at + 8 + length));
    } else {
      if (data.length > 0) dataEnded = true;
      if (type === 'PLTE') palette = true;
      else if (type === 'IEND') ended = true;
    }
    at = end;
  }
  if (data.length === 0) return bad('the image has no IDAT chunk');
  const lines = scanlines(width, height, layout);
  const expected = lines.reduce((sum, [rows, rowBytes]) => sum + rows * (rowBytes + 1), 0);
  let pixels: Buffer;
  try {
    // One output buffer of the size expected (and a byte more, to catch data that inflates further): inflateSync's
    // default, 16 KiB pieces joined at the end, cost a second copy and allocation of every image's pixels.
    pixels = inflateSync(data.length === 1 ? (data[0] as Uint8Array) : Buffer.concat(data), { maxOutputLength: expected + 1, chunkSize: Math.max(64, expected + 1) });
  } catch (error) {
    return bad(`the image data does not inflate: ${(error as Error).message}`);
  }
  if (pixels.byteLength !== expected) return bad(`the image data inflates to ${pixels.byteLength} bytes, ${expected} expected`);
  let at = 0;
  for (const [rows, rowBytes] of lines) {
    for (let row = 0; row < rows; row++, at += rowBytes + 1) {
      if ((pixels[at] ?? 0) > 4) return bad(`row ${row} has filter type ${pixels[at]}, not one of 0-4`);
    }
  }
  return { ok: true };
}
