import sharp from 'sharp';
import { randomInt } from '../util/random.js';

/**
 * The images of a sample: kinds drawn in the measure of a profile (every kind evenly, or shaped like the source's
 * bytes), painted to compress like photos, and encoded with sharp.
 */

export type Random = () => number;

/** One of `items`, chosen by `random`. */
export function pick<T>(random: Random, items: readonly T[]): T {
  return items[randomInt(random, items.length)] as T;
}

type ImageKind =
  | 'jpeg'
  | 'jpeg-progressive'
  | 'jpeg-grey'
  | 'jpeg-444'
  | 'jpeg-srgb'
  | 'jpeg-p3'
  | 'jpeg-rotated'
  | 'jpeg-cmyk'
  | 'png'
  | 'png-rgba'
  | 'png-palette'
  | 'png-grey';

/** The kinds of image a sample is drawn from. */
export type SampleProfile = 'varied' | 'source';

/** How a profile draws: which kinds, in what measure, and how large and grainy each comes out. */
interface Profile {
  kinds: readonly ImageKind[];
  /** The longest side, as a fraction of `imageSide`: from `min` to `min + spread`. */
  side: (kind: ImageKind) => { min: number; spread: number };
  /** Grain from `min` to `min + spread` (more grain: larger files). */
  grain: (kind: ImageKind) => { min: number; spread: number };
}
// Mostly JPEG, some PNG, as the source: its images come from photo datasets (COCO, VQAv2, OK-VQA, ...).
const KINDS: readonly ImageKind[] = [
  ...Array.from({ length: 13 }, () => 'jpeg' as const),
  'jpeg-progressive',
  'jpeg-progressive',
  'jpeg-grey',
  'png',
  'png-rgba',
  'png-palette',
  'png-grey',
];

/** `count` copies of `kind`. */
const times = (count: number, kind: ImageKind): ImageKind[] => Array.from({ length: count }, () => kind);

export const PROFILES: Record<SampleProfile, Profile> = {
  varied: { kinds: KINDS, side: () => ({ min: 0.5, spread: 0.5 }), grain: () => ({ min: 48, spread: 64 }) },
  // Per 1,000 images. Measured on 2,000 rows (seed 42, 640 px): JPEG 73 KB and PNG 887 KB on average (10% of the images,
  // 57% of the bytes), 154 KB a row: the source has 73 KB, 894 KB, 58% and 156 KB.
  source: {
    kinds: [
      ...times(687, 'jpeg'),
      ...times(150, 'jpeg-444'),
      ...times(10, 'jpeg-progressive'),
      ...times(25, 'jpeg-grey'),
      ...times(10, 'jpeg-srgb'),
      ...times(3, 'jpeg-p3'),
      ...times(5, 'jpeg-rotated'),
      ...times(2, 'jpeg-cmyk'),
      ...times(75, 'png'),
      ...times(33, 'png-rgba'),
    ],
    side: (kind) => (kind.startsWith('png') ? { min: 1.1, spread: 0.35 } : { min: 0.75, spread: 0.25 }),
    grain: (kind) => (kind.startsWith('png') ? { min: 12, spread: 16 } : { min: 22, spread: 26 }),
  },
};

interface DrawnImage {
  pixels: Buffer;
  width: number;
  height: number;
  channels: 3 | 4;
  kind: ImageKind;
  quality: number;
}

/** A picture-like image: a colour gradient, a few solid shapes and mild noise, so it compresses like a photo. */
export function drawImage(random: Random, side: number, profile: Profile): DrawnImage {
  const kind = pick(random, profile.kinds);
  const scale = profile.side(kind);
  const width = Math.max(8, Math.round(side * (scale.min + random() * scale.spread)));
  const height = Math.max(8, Math.round(width * (0.6 + random() * 0.6)));
  const alpha = kind === 'png-rgba';
  const channels = alpha ? 4 : 3;
  const pixels = Buffer.alloc(width * height * channels);
  const base = [random() * 255, random() * 255, random() * 255];
  const slope = [random() * 2 - 1, random() * 2 - 1, random() * 2 - 1];
  const boxes = Array.from({ length: 3 + randomInt(random, 4) }, () => ({
    x: randomInt(random, width),
    y: randomInt(random, height),
    w: 4 + randomInt(random, Math.max(1, width >> 1)),
    h: 4 + randomInt(random, Math.max(1, height >> 1)),
    colour: [randomInt(random, 256), randomInt(random, 256), randomInt(random, 256)],
  }));
  // Grain, mostly in luminance as in photos, so JPEG sizes come out like real photos (about 100-200 KB at 640 px).
  const grainRange = profile.grain(kind);
  const grain = grainRange.min + randomInt(random, grainRange.spread);
  let noise = randomInt(random, 0xffffffff) | 1;
  const next = (): number => {
    noise ^= noise << 13;
    noise ^= noise >>> 17;
    noise ^= noise << 5;
    return (noise >>> 0) / 4294967296 - 0.5;
  };
  const paint = (x: number, y: number, colour: readonly number[], alphaValue: number): void => {
    const offset = (y * width + x) * channels;
    const luma = next() * grain;
    for (let c = 0; c < 3; c++) {
      const value = (colour[c] as number) + luma + next() * (grain >> 1);
      pixels[offset + c] = value < 0 ? 0 : value > 255 ? 255 : value;
    }
    if (alpha) pixels[offset + 3] = alphaValue;
  };
  const background = [0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) background[c] = (base[c] as number) + (slope[c] as number) * (x + y) * 0.5;
      paint(x, y, background, 255);
    }
  }
  for (const box of boxes) {
    for (let y = box.y; y < Math.min(height, box.y + box.h); y++) {
      for (let x = box.x; x < Math.min(width, box.x + box.w); x++) paint(x, y, box.colour, 96);
    }
  }
  return { pixels, width, height, channels, kind, quality: 80 + randomInt(random, 16) };
}

/** Encodes a drawn image; runs off the main thread, so several can be encoded at once. */
export async function encodeImage(drawn: DrawnImage): Promise<Uint8Array> {
  const { pixels, width, height, channels, kind } = drawn;
  const image = sharp(pixels, { raw: { width, height, channels } });
  let encoded: Buffer;
  switch (kind) {
    case 'jpeg':
      encoded = await image.jpeg({ quality: drawn.quality }).toBuffer();
      break;
    case 'jpeg-progressive':
      encoded = await image.jpeg({ quality: 85, progressive: true }).toBuffer();
      break;
    case 'jpeg-grey':
      encoded = await image.toColourspace('b-w').jpeg({ quality: 85 }).toBuffer();
      break;
    case 'jpeg-444':
      encoded = await image.jpeg({ quality: drawn.quality, chromaSubsampling: '4:4:4' }).toBuffer();
      break;
    case 'jpeg-srgb':
      encoded = await image.withIccProfile('srgb').jpeg({ quality: drawn.quality }).toBuffer();
      break;
    case 'jpeg-p3':
      encoded = await image.withIccProfile('p3').jpeg({ quality: drawn.quality }).toBuffer();
      break;
    case 'jpeg-rotated':
      encoded = await image.withMetadata({ orientation: 6 }).jpeg({ quality: drawn.quality }).toBuffer();
      break;
    case 'jpeg-cmyk':
      encoded = await image.toColourspace('cmyk').jpeg({ quality: drawn.quality }).toBuffer();
      break;
    case 'png-palette':
      encoded = await image.png({ palette: true, colours: 64, dither: 0 }).toBuffer();
      break;
    case 'png-grey':
      encoded = await image.toColourspace('b-w').png().toBuffer();
      break;
    default:
      encoded = await image.png().toBuffer();
  }
  return new Uint8Array(encoded);
}
