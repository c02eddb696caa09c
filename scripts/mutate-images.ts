/**
 * Seeded mutants of good images, to hold the image check to what decoders refuse: bit flips, overwritten runs,
 * truncation, cut-out spans and inserted junk, each aimed at the compressed data (after the headers) or anywhere.
 * `node dist/scripts/mutate-images.js <image>... --out <dir> [--count N] [--seed S]` writes them out for a look;
 * tests call `mutateImages` directly.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRandom, randomInt } from '../src/random.js';

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
