import { availableParallelism } from 'node:os';
import type { ImageMode } from '../image/image-policy.js';

/**
 * The defaults, allowed values and ranges of `convert`'s options, stated once: the library's checks
 * (convert-options.ts) and the CLI's flags (their readers, help and checks) both read them from here.
 */

export const DEFAULTS = {
  dataset: 'openbmb/RLAIF-V-Dataset',
  revision: 'main',
  writerBatchSize: 128,
  testSize: 0.01,
  seed: 42,
  images: 'keep' as ImageMode,
  quality: 90,
  maxPixels: 89_478_485,
  /** As `datasets` writes it: 500×10⁶ bytes. */
  maxShardSize: '500MB',
  maxRejectFraction: 0.001,
  maxRowGroupBytes: '1.5GiB',
  streamRowGroupBytes: 1,
  imageTimeout: 60,
  checkpointEvery: '32MB',
  cacheSize: '10GB',
  onBadImage: 'skip' as 'skip' | 'fail',
  /** maxBytesInFlight: this much per worker, plus {@link DEFAULTS.bytesInFlightBase}. */
  bytesInFlightPerWorker: 64 * 2 ** 20,
  bytesInFlightBase: 128 * 2 ** 20,
};

/** The default of maxBytesInFlight for `numProc` workers: two batches of 32 MiB each, and room for the writer. */
export function defaultBytesInFlight(numProc: number): number {
  return DEFAULTS.bytesInFlightBase + numProc * DEFAULTS.bytesInFlightPerWorker;
}

/** What the options that take one of a few words accept, in the order the help lists them. */
export const CHOICES = {
  images: ['keep', 'jpeg', 'png', 'webp'] as readonly ImageMode[],
  onBadImage: ['skip', 'fail'] as const,
};

/**
 * Pillow refuses outright (DecompressionBombError) an image of more than twice its warning limit, 2 × 89,478,485
 * pixels: an output holding one could not be loaded by `datasets`, nor pass verify.
 */
const PILLOW_MAX_PIXELS = 2 * 89_478_485;

/**
 * More workers than this many a core only cost memory (each holds its own batch and decoders): 1,000 on 2 cores ran
 * out of heap after minutes.
 */
export const MAX_WORKERS_PER_CORE = 4;

/** The largest maxRowGroupBytes: parquet-wasm cannot address more than 4 GiB of memory. */
export const MAX_ROW_GROUP_BYTES = 3 * 2 ** 30;

/** The values a numeric option takes. */
export interface NumberRange {
  /** Whole numbers only; otherwise any finite number. */
  whole: boolean;
  /** The least value taken (itself refused when `above` is set). */
  min: number;
  /** Only values above `min`: a timeout of 0 would stop every image. */
  above?: boolean;
  /** The greatest value taken, if any. */
  max?: number;
  /** Why there is a maximum, told in the library's message. */
  why?: string;
  /**
   * Tighter bounds on what is typed on the command line than what the library takes: a guard against a slip of the
   * keyboard (a million workers, a part number with a digit too many). The library takes the range above.
   */
  flag?: { min?: number; max?: number };
}

/** The ranges of the numeric options, by the library's name of each. */
export const RANGES = {
  numProc: { whole: true, min: 1, flag: { max: MAX_WORKERS_PER_CORE * availableParallelism() } },
  writerBatchSize: { whole: true, min: 1, flag: { max: 1_000_000 } },
  seed: { whole: true, min: 0, max: 0xffffffff },
  quality: { whole: true, min: 1, max: 100 },
  maxSide: { whole: true, min: 1 },
  maxPixels: { whole: true, min: 1, max: PILLOW_MAX_PIXELS, why: 'above it, Pillow refuses to open an image' },
  maxRejectFraction: { whole: false, min: 0, max: 1 },
  imageTimeout: { whole: false, min: 0, above: true, flag: { min: 0.001 } },
  numShards: { whole: true, min: 1, flag: { max: 100_000 } },
  // The library takes 0 to numShards less one.
  shardIndex: { whole: true, min: 0, flag: { max: 99_999 } },
} satisfies Record<string, NumberRange>;
