import type { ImageHeader } from './image-header.js';

/**
 * Re-encoding a plain JPEG (8-bit grey or colour, upright, sRGB) with libjpeg-turbo itself, through the prebuilt
 * binaries of `@julusian/jpeg-turbo` (Linux, macOS, Windows): the same decoder and encoder Pillow uses. sharp (libvips
 * with mozjpeg) took 3.8 ms a photo of the RLAIF-V-shaped sample to decode and encode at quality 75, its pipeline
 * costing more than the codec; this takes 2.0 ms (392 JPEGs, one core).
 *
 * libjpeg-turbo's warnings are errors here (data cut short, a bad Huffman code): any failure gives null, and the
 * image goes to sharp's path, which decides as before whether it is a reject. Without the module (a platform it has no
 * binary for), every image goes to sharp.
 */

type JpegTurbo = typeof import('@julusian/jpeg-turbo');

let loading: Promise<JpegTurbo | null> | null = null;

/** The module, loaded on first use (keep mode never needs it), or null where it cannot be loaded. */
function load(): Promise<JpegTurbo | null> {
  loading ??= import('@julusian/jpeg-turbo').then(
    (module) => ((module as { default?: JpegTurbo }).default ?? module) as JpegTurbo,
    () => null,
  );
  return loading;
}

/**
 * The JPEG re-encoded at `quality` (4:2:0 for colour, as Pillow and sharp do by default; grey stays grey), or null
 * when libjpeg-turbo cannot or will not: sharp's path then takes the image.
 */
export async function reencodeJpeg(bytes: Uint8Array, header: ImageHeader, quality: number): Promise<Uint8Array | null> {
  if (header.format !== 'jpeg' || !header.plain) return null;
  const jpeg = await load();
  if (jpeg === null || (header.components !== 1 && header.components !== 3)) return null;
  const grey = header.components === 1;
  const format = grey ? jpeg.FORMAT_GRAY : jpeg.FORMAT_RGB;
  try {
    const decoded = jpeg.decompressSync(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { format });
    const encoded = jpeg.compressSync(decoded.data, { format, width: decoded.width, height: decoded.height, quality, subsampling: grey ? jpeg.SAMP_GRAY : jpeg.SAMP_420 });
    // A copy of its own: the encoder's buffer is sized for the worst case (a few times the image), and the image is
    // held until its row is written.
    return new Uint8Array(encoded);
  } catch {
    return null;
  }
}
