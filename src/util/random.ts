/**
 * A small seeded generator (mulberry32). The split and the sample generator depend on its exact sequence,
 * so it is written out here rather than taken from a library whose algorithm could change under us.
 */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n) from a generator made by {@link createRandom}. */
export function randomInt(random: () => number, n: number): number {
  return Math.floor(random() * n);
}
