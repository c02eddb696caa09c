import { availableParallelism } from 'node:os';
import { invalidOption, OptionError } from '../errors.js';
import { parseSize } from '../util/parse-size.js';
import type { ImageMode, ImagePolicy } from '../image/image-policy.js';
import path from 'node:path';
import { defaultStoreDir } from '../image/image-store-dir.js';
import { DEFAULT_COLUMNS, LOGICAL_COLUMNS, parseColumnMap, type ColumnMap, type LogicalColumn } from '../source/source-layout.js';
import { CHOICES, DEFAULTS, defaultBytesInFlight, MAX_ROW_GROUP_BYTES } from './option-table.js';
import { ROW_GROUP_SIZE } from '../output/splits.js';
import { checkNumber, oneOf } from './check-option.js';

/** What `convert` takes. Only `input` and `output` are required. */
export interface ConvertOptions {
  /** Parquet files or directories of them, read in the order given (directories in path order). */
  input?: string[];
  /**
   * A dataset on the Hugging Face Hub to convert instead of `input`: its parquet files are downloaded into the
   * Hugging Face cache (reusing what is there) while conversion runs. Default, when `input` is empty:
   * `openbmb/RLAIF-V-Dataset`.
   */
  dataset?: string;
  /** Branch, tag or commit of `dataset`. Default `main`. */
  revision?: string;
  /** The dataset directory to write. */
  output: string;
  /** Worker threads. Default: the available cores. */
  numProc?: number;
  /** Rows per task sent to a worker. A tuning knob: output bytes do not depend on it. Default 128. */
  writerBatchSize?: number;
  /** Test split: a fraction in [0, 1) (rows = ceil(n × F)) or a whole number of rows. Default 0.01. */
  testSize?: number;
  /** Seed of the split permutation. Default 42. */
  seed?: number;
  /** Image treatment. Default `keep`. */
  images?: ImageMode;
  /** Quality for re-encoded JPEG and WebP, 1-100. Default 95 for `keep`'s normalized images, 90 otherwise. */
  quality?: number;
  /** Shrink images whose longest side is larger. Default: no limit. */
  maxSide?: number | null;
  /** Refuse images with more pixels, before decoding. Default 89,478,485 (Pillow's bomb limit). */
  maxPixels?: number;
  /** Largest uncompressed size of one output shard, as `datasets` counts it: bytes or `500MB`. Default 500MB. */
  maxShardSize?: number | string;
  /** Replace an existing output directory. Default false. */
  overwrite?: boolean;
  /** The run fails (exit code 1) when more than this fraction of rows is rejected. Default 0.001. */
  maxRejectFraction?: number;
  /** `skip`: a row whose image is bad goes to rejects/ and the run goes on; `fail`: the run stops. Default skip. */
  onBadImage?: 'skip' | 'fail';
  /**
   * The most image data read and not yet written (in the reader, the workers, and the writer's queue and row groups):
   * bytes or `512MB`. The reader waits while this much is in flight; a batch larger than it goes alone. Memory is
   * about this plus a fixed cost (see the README's Memory section). Default 64 MiB per worker plus 128 MiB.
   */
  maxBytesInFlight?: number | string;
  /** Largest input row group that may be loaded (uncompressed bytes of the columns read). Default 1.5 GiB. */
  maxRowGroupBytes?: number | string;
  /** Input row groups larger than this have their image column read by the workers, a page at a time (where its encoding and codec allow), rather than whole by parquet-wasm on the main thread. Default 1: every row group. */
  streamRowGroupBytes?: number | string;
  /**
   * Seconds one image may take before its worker is stopped and the row retried alone, then rejected
   * (`image_timeout`). Default 60.
   */
  imageTimeout?: number;
  /**
   * Take up the work of an interrupted run with the same input and options, left in `<output>.partial`: what it
   * wrote is checked and kept, the rest converted. `false` starts over. Default true.
   */
  resume?: boolean;
  /** A checkpoint is taken after each stretch of this much input (uncompressed): bytes or `32MB`. Default 32MB. */
  checkpointEvery?: number | string;
  /**
   * Convert only part `shardIndex` (from 0) of `numShards`, into `<output>.partial/parts/`, for a multi-machine run:
   * the parts may run at once on machines sharing the filesystem, and {@link finalize} puts them together into the
   * output a one-machine run writes. Give both or neither. Default: the whole input, on this machine.
   */
  numShards?: number;
  shardIndex?: number;
  /**
   * The columns that hold the image and the question, chosen and rejected texts, when they are named otherwise than in
   * openbmb/RLAIF-V-Dataset: `{ image: 'img', question: 'prompt_text' }`, or the CLI's text form
   * `image=img,question=prompt_text`. The output is the same as with the usual names. Default: the usual names.
   */
  columns?: Partial<ColumnMap> | string;
  /**
   * Keep what was found of each image (whole and kept, re-encoded, rejected) in a cache shared by runs, so that a
   * re-run over the same images decodes none of them. Default true.
   */
  cache?: boolean;
  /** Where that cache is. Default: `$RLAIF_V_CACHE`, else `$XDG_CACHE_HOME/rlaif-v`, else `~/.cache/rlaif-v`. */
  cacheDir?: string;
  /** The most the cache may hold, least recently used entries removed first: bytes or `10GB`. Default 10GB. */
  cacheSize?: number | string;
}

export interface ResolvedConvertOptions {
  input: string[];
  /** The Hub dataset to read, when `input` is empty. */
  dataset: { repo: string; revision: string } | null;
  output: string;
  numProc: number;
  writerBatchSize: number;
  testSize: number;
  seed: number;
  image: ImagePolicy;
  maxShardSize: number;
  overwrite: boolean;
  maxRejectFraction: number;
  onBadImage: 'skip' | 'fail';
  maxRowGroupBytes: number;
  maxBytesInFlight: number;
  streamRowGroupBytes: number;
  imageTimeoutMs: number;
  resume: boolean;
  checkpointBytes: number;
  /** The columns that hold the image and the texts. */
  columns: ColumnMap;
  /** The persistent cache of image work, or null when it is off. */
  cache: { dir: string; maxBytes: number } | null;
  /** The part of a multi-machine run this run converts, or null for the whole input. */
  part: { index: number; count: number } | null;
  /** Rows per output row group: what `datasets` writes for image data. Not an option: it is part of the format. */
  rowGroupSize: number;
}

/** `input`, or else the Hub `dataset` at `revision`: never both. */
function resolveSource(options: ConvertOptions): Pick<ResolvedConvertOptions, 'input' | 'dataset'> {
  const input = options.input ?? [];
  if (!Array.isArray(input) || input.some((item) => typeof item !== 'string' || item === '')) {
    throw invalidOption('input', 'a list of file or directory paths', options.input);
  }
  if (input.length > 0 && options.dataset !== undefined) {
    throw new OptionError('Give input (local files) or dataset (a dataset on the Hub), not both');
  }
  if (input.length > 0) {
    if (options.revision !== undefined) throw new OptionError('revision applies to dataset (a dataset on the Hub), not to local input');
    return { input, dataset: null };
  }
  const repo = options.dataset ?? DEFAULTS.dataset;
  if (typeof repo !== 'string' || !/^([\w.-]+\/)?[\w.-]+$/.test(repo)) throw invalidOption('dataset', 'a Hub dataset id such as openbmb/RLAIF-V-Dataset', repo);
  const revision = options.revision ?? DEFAULTS.revision;
  if (typeof revision !== 'string' || revision === '' || revision.includes('..')) throw invalidOption('revision', 'a branch, tag or commit', revision);
  return { input, dataset: { repo, revision } };
}

/** How images are encoded: `images` and `quality` (the rest of the image policy is checked later, see below). */
function resolveEncoding(options: ConvertOptions): Pick<ImagePolicy, 'mode' | 'quality'> {
  const mode = oneOf(options.images ?? DEFAULTS.images, 'images', CHOICES.images);
  const quality = checkNumber('quality', options.quality ?? DEFAULTS.quality);
  // An option that would do nothing is a mistake to say, not to pass over: keep and png have no quality to set.
  if (options.quality !== undefined && mode !== 'jpeg' && mode !== 'webp') {
    throw new OptionError(`quality applies to images jpeg and webp (the encoders that take one), not to ${mode}`);
  }
  return { mode, quality };
}

/** The train/test split: `testSize` and `seed`. */
function resolveSplit(options: ConvertOptions): Pick<ResolvedConvertOptions, 'testSize' | 'seed'> {
  const testSize = options.testSize ?? DEFAULTS.testSize;
  if (typeof testSize !== 'number' || !Number.isFinite(testSize) || testSize < 0 || (testSize >= 1 && !Number.isInteger(testSize))) {
    throw invalidOption('testSize', 'a fraction in [0, 1) or a whole number of rows', testSize);
  }
  return { testSize, seed: checkNumber('seed', options.seed ?? DEFAULTS.seed) };
}

/** How the input is read: the largest row group loaded whole, and the columns that hold the data. */
function resolveReading(options: ConvertOptions): Pick<ResolvedConvertOptions, 'maxRowGroupBytes' | 'columns'> {
  const maxRowGroupBytes = parseSize(options.maxRowGroupBytes ?? DEFAULTS.maxRowGroupBytes, 'maxRowGroupBytes');
  if (maxRowGroupBytes > MAX_ROW_GROUP_BYTES) {
    throw new OptionError('maxRowGroupBytes must be at most 3 GiB: parquet-wasm cannot address more than 4 GiB of memory');
  }
  return { maxRowGroupBytes, columns: resolveColumns(options.columns) };
}

/** `columns`, in the CLI's text form or as an object, over the usual names. */
function resolveColumns(option: ConvertOptions['columns']): ColumnMap {
  if (typeof option === 'string') {
    try {
      return parseColumnMap(option);
    } catch (error) {
      throw new OptionError((error as Error).message);
    }
  }
  const columns: ColumnMap = { ...DEFAULT_COLUMNS };
  if (option === undefined) return columns;
  for (const [logical, name] of Object.entries(option)) {
    if (!(LOGICAL_COLUMNS as readonly string[]).includes(logical) || typeof name !== 'string' || name === '') {
      throw invalidOption(`columns.${logical}`, 'a column name, for one of image, question, chosen, rejected', name);
    }
    columns[logical as LogicalColumn] = name;
  }
  return columns;
}

/** The part of a multi-machine run: `numShards` and `shardIndex`, both or neither. */
function resolvePart(options: ConvertOptions): ResolvedConvertOptions['part'] {
  if (options.numShards === undefined && options.shardIndex === undefined) return null;
  if (options.numShards === undefined || options.shardIndex === undefined) throw new OptionError('Give numShards and shardIndex together, or neither');
  const count = checkNumber('numShards', options.numShards);
  const index = checkNumber('shardIndex', options.shardIndex, { max: count - 1, why: 'numShards less one' });
  return { index, count };
}

/** What is written and when the run fails: the shards' size, and what is done with rejected rows. */
function resolveShardsAndRejects(options: ConvertOptions): Pick<ResolvedConvertOptions, 'maxShardSize' | 'maxRejectFraction' | 'onBadImage'> {
  return {
    maxShardSize: parseSize(options.maxShardSize ?? DEFAULTS.maxShardSize, 'maxShardSize'),
    maxRejectFraction: checkNumber('maxRejectFraction', options.maxRejectFraction ?? DEFAULTS.maxRejectFraction),
    onBadImage: oneOf(options.onBadImage ?? DEFAULTS.onBadImage, 'onBadImage', CHOICES.onBadImage),
  };
}

/** The workers: `numProc` and `writerBatchSize`. */
function resolveWorkers(options: ConvertOptions): Pick<ResolvedConvertOptions, 'numProc' | 'writerBatchSize'> {
  return {
    numProc: checkNumber('numProc', options.numProc ?? availableParallelism()),
    writerBatchSize: checkNumber('writerBatchSize', options.writerBatchSize ?? DEFAULTS.writerBatchSize),
  };
}

/** Memory and time: `maxBytesInFlight` (by default from numProc), `streamRowGroupBytes`, `imageTimeout`. */
function resolveBounds(options: ConvertOptions, numProc: number): Pick<ResolvedConvertOptions, 'maxBytesInFlight' | 'streamRowGroupBytes' | 'imageTimeoutMs'> {
  return {
    maxBytesInFlight: options.maxBytesInFlight === undefined ? defaultBytesInFlight(numProc) : parseSize(options.maxBytesInFlight, 'maxBytesInFlight'),
    streamRowGroupBytes: parseSize(options.streamRowGroupBytes ?? DEFAULTS.streamRowGroupBytes, 'streamRowGroupBytes'),
    imageTimeoutMs: checkNumber('imageTimeout', options.imageTimeout ?? DEFAULTS.imageTimeout) * 1000,
  };
}

/**
 * Checks every option once and fills in the defaults.
 *
 * @throws {OptionError} naming the option, what was expected and what was received.
 */
export function resolveConvertOptions(options: ConvertOptions): ResolvedConvertOptions {
  // The order names the first of two bad options (test/options/convert-options.test.ts holds it): the source, output,
  // images and quality, the split, maxSide, reading, the part, the workers, maxPixels, shards and rejects, bounds,
  // checkpointEvery, the cache.
  const { input, dataset } = resolveSource(options);
  if (typeof options.output !== 'string' || options.output === '') {
    throw invalidOption('output', 'a directory path', options.output);
  }
  const encoding = resolveEncoding(options);
  const { testSize, seed } = resolveSplit(options);
  const maxSide = options.maxSide === undefined || options.maxSide === null ? null : checkNumber('maxSide', options.maxSide);
  const reading = resolveReading(options);
  const part = resolvePart(options);
  const work = resolveWorkers(options);
  const image: ImagePolicy = { ...encoding, maxSide, maxPixels: checkNumber('maxPixels', options.maxPixels ?? DEFAULTS.maxPixels) };
  const written = resolveShardsAndRejects(options);
  const bounds = resolveBounds(options, work.numProc);
  return {
    input,
    dataset,
    output: options.output,
    numProc: work.numProc,
    writerBatchSize: work.writerBatchSize,
    testSize,
    seed,
    image,
    maxShardSize: written.maxShardSize,
    overwrite: options.overwrite ?? false,
    maxRejectFraction: written.maxRejectFraction,
    onBadImage: written.onBadImage,
    maxRowGroupBytes: reading.maxRowGroupBytes,
    maxBytesInFlight: bounds.maxBytesInFlight,
    streamRowGroupBytes: bounds.streamRowGroupBytes,
    imageTimeoutMs: bounds.imageTimeoutMs,
    resume: options.resume ?? true,
    checkpointBytes: parseSize(options.checkpointEvery ?? DEFAULTS.checkpointEvery, 'checkpointEvery'),
    columns: reading.columns,
    cache: options.cache === false ? null : { dir: path.resolve(options.cacheDir ?? defaultStoreDir()), maxBytes: parseSize(options.cacheSize ?? DEFAULTS.cacheSize, 'cacheSize') },
    part,
    rowGroupSize: ROW_GROUP_SIZE,
  };
}
