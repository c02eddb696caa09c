/**
 * Seeded mutants of good images, to hold the image check to what decoders refuse: bit flips, overwritten runs,
 * truncation, cut-out spans and inserted junk, each aimed at the compressed data (after the headers) or anywhere.
 * `node dist/scripts/mutate-images.js <image>... --out <dir> [--count N] [--seed S]` writes them out for a look;
 * tests call `mutateImages` directly.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRandom, randomInt } from '../src/util/random.js';

export interface Mutant {
  /** What was done, e.g. `flip-bits@1234x3`, with the index of the image it came from. */
  name: string;
  bytes: Uint8Array;
}

type Random = () => number;

/** Where the image data starts, so most mutations hit it rather than the headers (which a reader refuses early). */
function dataStart(bytes: Uint8Array): number {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    for (let i = 2; i + 1 < bytes.length; i++) if (bytes[i] === 0xff && bytes[i + 1] === 0xda) return i + 2;
  }
  const idat = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf('IDAT');
  return idat > 0 ? idat + 4 : 0;
}

const MUTATIONS: ((bytes: Uint8Array, at: number, random: Random) => { what: string; bytes: Uint8Array })[] = [
  (bytes, at, random) => {
    const out = bytes.slice();
    const flips = 1 + randomInt(random, 4);
    for (let i = 0; i < flips; i++) {
      const where = Math.min(out.length - 1, at + randomInt(random, 64));
      out[where] = (out[where] ?? 0) ^ (1 << randomInt(random, 8));
    }
    return { what: `flip-bits@${at}x${flips}`, bytes: out };
  },
  (bytes, at, random) => {
    const out = bytes.slice();
    const length = 1 + randomInt(random, 256);
    const value = randomInt(random, 256);
    out.fill(value, at, Math.min(out.length, at + length));
    return { what: `overwrite@${at}+${length}=${value}`, bytes: out };
  },
  (bytes, at) => ({ what: `truncate@${at}`, bytes: bytes.slice(0, at) }),
  (bytes, start, random) => {
    const length = 1 + randomInt(random, 512);
    const out = new Uint8Array(Math.max(0, bytes.length - length));
    const at = Math.min(start, out.length);
    out.set(bytes.subarray(0, at));
    out.set(bytes.subarray(at + length).subarray(0, out.length - at), at);
    return { what: `cut@${at}+${length}`, bytes: out };
  },
  (bytes, at, random) => {
    const junk = new Uint8Array(1 + randomInt(random, 64)).map(() => randomInt(random, 256));
    const out = new Uint8Array(bytes.length + junk.length);
    out.set(bytes.subarray(0, at));
    out.set(junk, at);
    out.set(bytes.subarray(at), at + junk.length);
    return { what: `insert@${at}+${junk.length}`, bytes: out };
  },
];

/**
 * `count` mutants of `images`, taken in turn; the same inputs and seed give the same mutants. Three in four hit the
 * compressed data, the rest any byte.
 */
export function mutateImages(images: Uint8Array[], count: number, seed = 1): Mutant[] {
  const random = createRandom(seed);
  const mutants: Mutant[] = [];
  for (let i = 0; i < count && images.length > 0; i++) {
    const index = i % images.length;
    const image = images[index] as Uint8Array;
    const start = random() < 0.75 ? dataStart(image) : 0;
    const at = start + randomInt(random, Math.max(1, image.length - start));
    const mutation = MUTATIONS[randomInt(random, MUTATIONS.length)];
    if (mutation === undefined) continue;
    const { what, bytes } = mutation(image, at, random);
    mutants.push({ name: `${index}:${what}`, bytes });
  }
  return mutants;
}

/** A header structure to aim at: where it starts, how long it is, and where its length (and, for PNG, CRC) field is. */
interface Structure {
  name: string;
  start: number;
  end: number;
  lengthAt: number;
  lengthBytes: number;
  crcAt?: number;
}

/** JPEG marker segments up to and including the SOS header (APPn, DQT, DHT, SOF, DRI, SOS); PNG chunks. */
function structures(bytes: Uint8Array): Structure[] {
  const found: Structure[] = [];
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    for (let at = 2; at + 4 <= bytes.length && bytes[at] === 0xff; ) {
      const marker = bytes[at + 1] ?? 0;
      const length = ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0);
      const names: Record<number, string> = { 0xdb: 'DQT', 0xc4: 'DHT', 0xc0: 'SOF0', 0xc2: 'SOF2', 0xdd: 'DRI', 0xda: 'SOS' };
      found.push({ name: names[marker] ?? `FF${marker.toString(16).toUpperCase()}`, start: at + 4, end: Math.min(bytes.length, at + 2 + length), lengthAt: at + 2, lengthBytes: 2 });
      if (marker === 0xda) break;
      at += 2 + length;
    }
  } else if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = 8; at + 12 <= bytes.length; ) {
      const length = view.getUint32(at);
      const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
      found.push({ name: type, start: at + 8, end: Math.min(bytes.length, at + 8 + length), lengthAt: at, lengthBytes: 4, crcAt: at + 8 + length });
      at += 12 + length;
    }
  }
  return found;
}

/**
 * `count` mutants of `images` aimed at their structure rather than their pixels: a byte of a JPEG marker segment
 * (quantization and Huffman tables, frame and scan headers, APPn) or a PNG chunk (IHDR, PLTE, IDAT...) changed, its
 * length field off by a little or a lot, a PNG chunk's CRC broken. Images without such structures (WebP, GIF) get
 * the data mutations of {@link mutateImages}.
 */
export function mutateStructure(images: Uint8Array[], count: number, seed = 1): Mutant[] {
  const random = createRandom(seed);
  const mutants: Mutant[] = [];
  for (let i = 0; i < count && images.length > 0; i++) {
    const index = i % images.length;
    const image = images[index] as Uint8Array;
    const parts = structures(image);
    const part = parts[randomInt(random, Math.max(1, parts.length))];
    if (part === undefined) {
      mutants.push(...mutateImages([image], 1, seed * 1000 + i).map((mutant) => ({ ...mutant, name: `${index}:${mutant.name.slice(2)}` })));
      continue;
    }
    const out = image.slice();
    const choice = randomInt(random, part.crcAt === undefined ? 2 : 3);
    let what: string;
    if (choice === 0 && part.end > part.start) {
      const where = part.start + randomInt(random, part.end - part.start);
      out[where] = (out[where] ?? 0) ^ (1 + randomInt(random, 255));
      what = `${part.name}-byte@${where}`;
    } else if (choice <= 1) {
      const delta = [1, -1, 2, -2, 16, -16, 255][randomInt(random, 7)] ?? 1;
      const last = part.lengthAt + part.lengthBytes - 1;
      out[last] = ((out[last] ?? 0) + delta) & 0xff;
      what = `${part.name}-length${delta > 0 ? '+' : ''}${delta}`;
    } else {
      const where = (part.crcAt ?? 0) + randomInt(random, 4);
      out[where] = (out[where] ?? 0) ^ 0xff;
      what = `${part.name}-crc@${where}`;
    }
    mutants.push({ name: `${index}:${what}`, bytes: out });
  }
  return mutants;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const option = (name: string, fallback: string): string => {
    const at = args.indexOf(name);
    const value = at >= 0 ? args.splice(at, 2)[1] : undefined;
    return value ?? fallback;
  };
  const out = option('--out', 'mutants');
  const count = Number(option('--count', '400'));
  const seed = Number(option('--seed', '1'));
  const images = await Promise.all(args.map(async (file) => new Uint8Array(await readFile(file))));
  await mkdir(out, { recursive: true });
  for (const [i, mutant] of mutateImages(images, count, seed).entries()) {
    await writeFile(path.join(out, `${String(i).padStart(4, '0')}-${mutant.name.replace(/[^\w@+=.-]/g, '_')}`), mutant.bytes);
  }
}
