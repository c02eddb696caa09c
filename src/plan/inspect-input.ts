import { formatBytes } from '../util/format.js';
import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { RecordBatchReader } from 'apache-arrow';
import { Compression, Encoding, ParquetFile } from 'parquet-wasm';
import { InputError } from '../errors.js';
import { columnsOf, DEFAULT_COLUMNS, imageLeaves, outputLeaves, sourceLayout, type ColumnMap, type SourceLayout } from '../source/source-layout.js';
import { listInputs, type DuplicateInput } from './list-inputs.js';


export interface InputRowGroup {
  /** Index of the row group in its file. */
  index: number;
  rows: number;
  /** Uncompressed bytes of the source columns in this row group: what reading it costs in memory. */
  bytes: number;
  /** Uncompressed bytes of the columns the output keeps (question, chosen, rejected, image bytes). */
  outputBytes: number;
  /**
   * Whether the image column is read a page at a time (large row groups whose image pages this tool can decode) rather
   * than loaded whole by parquet-wasm with the rest of the row group.
   */
  streamImages: boolean;
}

export interface InputFile {
  path: string;
  /** Size of the file on disk. */
  size: number;
  rows: number;
  /** Global index of the file's first row. */
  firstRow: number;
  rowGroups: InputRowGroup[];
  /** SHA-256 of the file's footer (its parquet metadata), hex: what identifies its content without reading it all. */
  footerSha256: string;
  /** Which columns hold what. */
  layout: SourceLayout;
  /** The directory of the dataset the file is in (see InputSource). */
  root: string;
}

export interface InputPlan {
  files: InputFile[];
  rows: number;
  /** Bytes on disk of all input files. */
  bytes: number;
  /** Uncompressed bytes of the columns the output keeps, over all files: the basis of the shard plan's estimate. */
  outputBytes: number;
  /** Resolves when a file can be read from its `path` (a file still downloading); absent when all are local. */
  ready?: (file: InputFile) => Promise<void>;
  /** Input files given more than once, left out (absent when none was). */
  duplicates?: DuplicateInput[];
}

export interface InspectOptions {
  /** Row groups larger than this (uncompressed) have their image column read page by page where possible. */
  streamRowGroupBytes: number;
  /**
   * Largest row group (uncompressed bytes of the columns read) that may be loaded. parquet-wasm loads a whole row
   * group into 32-bit wasm memory, which cannot grow past 4 GiB: a 2.25 GB row group killed the process here.
   */
  maxRowGroupBytes: number;
  /** The columns that hold the image and the texts (`--columns`). Default: their names in openbmb/RLAIF-V-Dataset. */
  columns?: ColumnMap;
}

const MAGIC = 'PAR1';

/** Codecs and encodings the page reader (read-column-pages) decodes; others mean the row group is read whole. */
const PAGEABLE_CODECS = new Set<Compression>([
  Compression.UNCOMPRESSED,
  Compression.SNAPPY,
  Compression.GZIP,
  Compression.BROTLI,
  Compression.LZ4,
  Compression.ZSTD,
  Compression.LZ4_RAW,
]);
const PAGEABLE_ENCODINGS = new Set<Encoding>([
  Encoding.PLAIN,
  Encoding.PLAIN_DICTIONARY,
  Encoding.RLE,
  Encoding.BIT_PACKED,
  Encoding.DELTA_LENGTH_BYTE_ARRAY,
  Encoding.DELTA_BYTE_ARRAY,
  Encoding.RLE_DICTIONARY,
]);

/** SHA-256 of a parquet file's footer: the metadata between its last row group and the closing length and PAR1. */
async function footerSha256(file: string, blob: Blob): Promise<string> {
  try {
    const length = Buffer.from(await blob.slice(blob.size - 8, blob.size - 4).arrayBuffer()).readUInt32LE(0);
    const footer = new Uint8Array(await blob.slice(Math.max(0, blob.size - 8 - length), blob.size - 8).arrayBuffer());
    return createHash('sha256').update(footer).digest('hex');
  } catch (error) {
    throw new InputError('ERR_INPUT_UNREADABLE', `${file}: cannot be read (${(error as Error).message}).`, { cause: error, file });
  }
}

/** Checks that a parquet file starts and ends with PAR1 (not parquet, or cut short, otherwise). */
async function checkMagic(file: string, blob: Blob): Promise<void> {
  let head = '';
  let tail = '';
  try {
    if (blob.size >= 12) {
      head = Buffer.from(await blob.slice(0, 4).arrayBuffer()).toString('latin1');
      tail = Buffer.from(await blob.slice(blob.size - 4, blob.size).arrayBuffer()).toString('latin1');
    }
  } catch (error) {
    throw new InputError('ERR_INPUT_UNREADABLE', `${file}: cannot be read (${(error as Error).message}).`, { cause: error, file });
  }
  if (head !== MAGIC) {
    throw new InputError('ERR_NOT_PARQUET', `${file}: not a parquet file (it does not start with PAR1).`, { file });
  }
  if (tail !== MAGIC) {
    throw new InputError(
      'ERR_PARQUET_TRUNCATED',
      `${file}: the parquet file is truncated (it does not end with PAR1); download or copy it again.`,
      { file },
    );
  }
}

/**
 * A parquet file to plan from: where it will be read (`path`), and a Blob its footer is read from now. For a file
 * still downloading, the Blob reads the remote copy by HTTP range requests.
 */
export interface InputSource {
  /** The name used in messages: the local path, or repo/path for a file on the Hub. */
  name: string;
  path: string;
  blob: Blob;
  /** The directory of the dataset the file is in (the input directory, or the snapshot's): image paths stay within it. */
  root: string;
}

async function inspectSource(source: InputSource, firstRow: number, options: InspectOptions): Promise<InputFile> {
  const file = source.name;
  const size = source.blob.size;
  await checkMagic(file, source.blob);
  let parquet: ParquetFile;
  try {
    parquet = await ParquetFile.fromFile(source.blob);
  } catch (error) {
    throw new InputError('ERR_PARQUET_FOOTER', `${file}: the parquet footer cannot be read (${String(error)}).`, {
      cause: error,
      file,
    });
  }
  try {
    const reader = RecordBatchReader.from(parquet.schema().intoIPCStream());
    reader.open();
    const layout = sourceLayout(file, reader.schema, options.columns ?? DEFAULT_COLUMNS);
    const read = new Set(columnsOf(layout));
    const leaves = imageLeaves(layout);
    const imageColumn = leaves?.bytes[0] ?? null;
    const metadata = parquet.metadata();
    const rowGroups: InputRowGroup[] = [];
    let rows = 0;
    for (let index = 0; index < metadata.numRowGroups(); index++) {
      const group = metadata.rowGroup(index);
      let bytes = 0;
      let imageBytes = 0;
      let outputBytes = 0;
      let pageable = true;
      for (const column of group.columns()) {
        const columnPath = column.columnPath().join('.');
        const top = columnPath.split('.')[0] ?? '';
        if (read.has(top)) bytes += column.uncompressedSize();
        if (outputLeaves(layout, columnPath)) outputBytes += column.uncompressedSize();
        if (top === imageColumn) {
          imageBytes += column.uncompressedSize();
          pageable &&= PAGEABLE_CODECS.has(column.compression()) && column.encodings().every((encoding) => PAGEABLE_ENCODINGS.has(encoding));
        }
        column.free();
      }
      const groupRows = group.numRows();
      group.free();
      const streamImages = imageColumn !== null && pageable && bytes > options.streamRowGroupBytes;
      // What must be loaded at once: the whole row group, or without the image column when that is read by pages.
      const loaded = streamImages ? bytes - imageBytes : bytes;
      if (loaded > options.maxRowGroupBytes) {
        throw new InputError(
          'ERR_ROW_GROUP_TOO_LARGE',
          `${file}: row group ${index} holds ${formatBytes(loaded)} uncompressed that must be loaded at once, over the ${formatBytes(options.maxRowGroupBytes)} ` +
            'that can be loaded safely. Rewrite the file with smaller row groups (for example pyarrow.parquet.write_table(..., row_group_size=1000)).',
          { file },
        );
      }
      rowGroups.push({ index, rows: groupRows, bytes, outputBytes, streamImages });
      rows += groupRows;
    }
    metadata.free();
    return { path: source.path, size, rows, firstRow, rowGroups, footerSha256: await footerSha256(file, source.blob), layout, root: source.root };
  } finally {
    parquet.free();
  }
}

/** Opens local files as Blobs, one at a time, failing on the first that is missing. */
async function* localSources(files: readonly { path: string; root: string }[]): AsyncGenerator<InputSource> {
  for (const { path: file, root } of files) {
    let blob: Blob;
    try {
      blob = await openAsBlob(file);
    } catch (error) {
      throw new InputError('ERR_INPUT_MISSING', `${file}: no such file. Check the --input path.`, { cause: error, file });
    }
    yield { name: file, path: file, blob, root };
  }
}

/**
 * Plans the run from the input files' footers alone: which files, how many rows each (so global row indices and the
 * split are fixed before any image is read), and whether every row group can be loaded.
 *
 * @throws {InputError} naming the file and the problem: missing, unreadable, not parquet, truncated, a missing or
 * mistyped column, a row group too large to load. Nothing has been written when it throws.
 */
export async function inspectInput(inputs: readonly string[], options: InspectOptions): Promise<InputPlan> {
  if (inputs.length === 0) throw new InputError('ERR_INPUT_MISSING', 'No input given: pass --input <file|dir>.');
  const { files, duplicates } = await listInputs(inputs);
  const plan = await inspectSources(localSources(files), options);
  return duplicates.length === 0 ? plan : { ...plan, duplicates };
}

/**
 * Plans the run from the footers of `sources`, in order: local files, or files on the Hub read by range requests
 * before they are downloaded. See {@link inspectInput} for what it checks and throws.
 */
export async function inspectSources(sources: AsyncIterable<InputSource> | Iterable<InputSource>, options: InspectOptions): Promise<InputPlan> {
  const files: InputFile[] = [];
  let rows = 0;
  let bytes = 0;
  let outputBytes = 0;
  for await (const source of sources) {
    const inspected = await inspectSource(source, rows, options);
    files.push(inspected);
    rows += inspected.rows;
    bytes += inspected.size;
    for (const group of inspected.rowGroups) outputBytes += group.outputBytes;
  }
  if (rows === 0) throw new InputError('ERR_INPUT_EMPTY', `The input holds no rows (${files.length} file(s) read).`);
  return { files, rows, bytes, outputBytes };
}
