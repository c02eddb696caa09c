import type { FileHandle } from 'node:fs/promises';
import { parquetMetadataAsync, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { parquetHeader, readPage } from 'hyparquet/src/column.js';
import { DEFAULT_PARSERS, convert, convertWithDictionary } from 'hyparquet/src/convert.js';
import { decompressPage, readDataPage, readDataPageV2 } from 'hyparquet/src/datapage.js';
import { getMaxDefinitionLevel, getTreePath } from 'hyparquet/src/schema.js';
import type { ColumnDecoder, DecodedArray, PageHeader } from 'hyparquet/src/types.js';
import { compressors } from 'hyparquet-compressors';

/** Encodings and codecs this reader decodes page by page; anything else is read whole by parquet-wasm. */
const STREAMABLE_ENCODINGS = new Set([
  'PLAIN',
  'RLE',
  'BIT_PACKED',
  'PLAIN_DICTIONARY',
  'RLE_DICTIONARY',
  'DELTA_LENGTH_BYTE_ARRAY',
  'DELTA_BYTE_ARRAY',
]);
const STREAMABLE_CODECS = new Set(['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'ZSTD', 'BROTLI', 'LZ4', 'LZ4_RAW']);

/** A page header is small unless it carries statistics of large values; the window grows until it parses. */
const FIRST_HEADER_WINDOW = 64 * 1024;
const MAX_HEADER_WINDOW = 64 * 1024 * 1024;
/** Scanning reads headers only, so it starts small: most headers are a few dozen bytes. */
const SCAN_HEADER_WINDOW = 1024;

/**
 * An open file as hyparquet's AsyncBuffer: each slice is read when asked for, except those within `tail`, the last
 * bytes of the file, read once up front (where the footer is).
 */
export async function fileBuffer(file: FileHandle, size: number, tail = 0): Promise<AsyncBuffer> {
  const last = Math.min(size, tail);
  const end = new Uint8Array(last);
  if (last > 0) await file.read(end, 0, last, size - last);
  return {
    byteLength: size,
    slice: async (start: number, stop = size): Promise<ArrayBuffer> => {
      if (start >= size - last) return end.slice(start - (size - last), stop - (size - last)).buffer;
      const bytes = new Uint8Array(stop - start);
      await file.read(bytes, 0, bytes.byteLength, start);
      return bytes.buffer;
    },
  };
}

/** The footer of a parquet file, parsed by hyparquet (its own thrift reader), read from the end of the file. */
export async function readFooter(file: FileHandle, size: number): Promise<FileMetaData> {
  return parquetMetadataAsync(await fileBuffer(file, size, 512 * 1024));
}

function chunkOf(metadata: FileMetaData, rowGroup: number, path: readonly string[]) {
  const chunk = metadata.row_groups[rowGroup]?.columns.find((column) => column.meta_data?.path_in_schema.join('.') === path.join('.'));
  return chunk?.meta_data;
}

/**
 * Whether a leaf column of a row group can be read page by page here: a plain or dictionary-encoded byte array column
 * compressed with a codec hyparquet-compressors has.
 */
export function isStreamable(metadata: FileMetaData, rowGroup: number, path: readonly string[]): boolean {
  const chunk = chunkOf(metadata, rowGroup, path);
  if (chunk === undefined || chunk.type !== 'BYTE_ARRAY') return false;
  return STREAMABLE_CODECS.has(chunk.codec) && chunk.encodings.every((encoding) => STREAMABLE_ENCODINGS.has(encoding));
}

/** Where one page of a column chunk is in its file, and what its header says. */
export interface PageRef {
  /** File offset of the page's data (just past its header). */
  offset: number;
  compressedSize: number;
  header: PageHeader;
  /** Values (rows, in a column that does not repeat) in the page; 0 for a dictionary page. */
  rows: number;
}

/**
 * What decoding a column's pages needs, as plain data that can be sent to a worker: hyparquet's column decoder less
 * its functions, and the definition level at which a value is present.
 */
export interface ColumnSpec {
  decoder: Omit<ColumnDecoder, 'parsers' | 'compressors'>;
  maxDefinition: number;
}

const DICTIONARY_ENCODINGS = new Set(['PLAIN_DICTIONARY', 'RLE_DICTIONARY']);

/** Whether a data page's values are indexes into the column chunk's dictionary page. */
export function usesDictionary(page: PageRef): boolean {
  const encoding = page.header.data_page_header?.encoding ?? page.header.data_page_header_v2?.encoding;
  return encoding !== undefined && DICTIONARY_ENCODINGS.has(encoding);
}

/** The pages of one column chunk: its dictionary page, if any, and its data pages in order. */
export interface ColumnPages {
  spec: ColumnSpec;
  dictionary: PageRef | null;
  pages: PageRef[];
  /** The row group of the chunk, for errors that say where. */
  rowGroup?: number;
}

function columnSpec(metadata: FileMetaData, rowGroup: number, path: readonly string[]) {
  const chunk = chunkOf(metadata, rowGroup, path);
  if (chunk === undefined) throw new Error(`no column ${path.join('.')} in row group ${rowGroup}`);
  const schemaPath = getTreePath(parquetSchema(metadata), [...path]);
  const element = schemaPath[schemaPath.length - 1]?.element;
  if (element === undefined) throw new Error(`no schema element for ${path.join('.')}`);
  const spec: ColumnSpec = {
    // hyparquet decodes unannotated byte arrays as UTF-8 text by default; image bytes must stay bytes.
    decoder: { pathInSchema: [...path], type: chunk.type, element, schemaPath, codec: chunk.codec, utf8: false },
    maxDefinition: getMaxDefinitionLevel(schemaPath),
  };
  let offset = Number(chunk.dictionary_page_offset ?? chunk.data_page_offset);
  if (chunk.dictionary_page_offset !== undefined && Number(chunk.dictionary_page_offset) <= 0) offset = Number(chunk.data_page_offset);
  return { spec, start: offset, end: offset + Number(chunk.total_compressed_size) };
}

/** Reads the page header at `offset`, growing the window until it parses (statistics can make a header large). */
async function readPageHeader(file: FileHandle, offset: number, end: number, first: number): Promise<{ header: PageHeader; length: number }> {
  let window = Math.min(first, end - offset);
  for (;;) {
    const bytes = new Uint8Array(window);
    await file.read(bytes, 0, window, offset);
    try {
      const reader = { view: new DataView(bytes.buffer), offset: 0 };
      const header = parquetHeader(reader);
      return { header, length: reader.offset };
    } catch (error) {
      if (window >= end - offset || window >= MAX_HEADER_WINDOW) throw error;
      window = Math.min(window * 4, end - offset, MAX_HEADER_WINDOW);
    }
  }
}

/** Values in a data page: rows, since the columns read here do not repeat. */
function rowsOf(header: PageHeader): number {
  if (header.type === 'DATA_PAGE') return header.data_page_header?.num_values ?? 0;
  if (header.type === 'DATA_PAGE_V2') return header.data_page_header_v2?.num_rows ?? 0;
  return 0;
}

/**
 * Lists the pages of one byte-array leaf column of one row group by reading their headers only (a few hundred bytes
 * each), so workers can each read the pages of their own rows from the file. Checks the pages hold the row group's rows.
 */
export async function scanColumnPages(file: FileHandle, metadata: FileMetaData, rowGroup: number, path: readonly string[]): Promise<ColumnPages> {
  const { spec, start, end } = columnSpec(metadata, rowGroup, path);
  let dictionary: PageRef | null = null;
  const pages: PageRef[] = [];
  let rows = 0;
  for (let offset = start; offset < end; ) {
    const { header, length } = await readPageHeader(file, offset, end, SCAN_HEADER_WINDOW);
    const ref = { offset: offset + length, compressedSize: header.compressed_page_size, header, rows: rowsOf(header) };
    offset = ref.offset + ref.compressedSize;
    if (header.type === 'DICTIONARY_PAGE') dictionary = ref;
    else if (ref.rows > 0) pages.push(ref);
    rows += ref.rows;
  }
  const expected = Number(metadata.row_groups[rowGroup]?.num_rows ?? 0);
  if (rows !== expected) throw new Error(`column ${path.join('.')} of row group ${rowGroup} held ${rows} values, expected ${expected}`);
  return { spec, dictionary, pages, rowGroup };
}

function fullDecoder(spec: ColumnSpec): ColumnDecoder {
  return { ...spec.decoder, parsers: DEFAULT_PARSERS, compressors };
}

/** Decodes a dictionary page's data (as read from the file) into its values. */
export function decodeDictionaryPage(spec: ColumnSpec, ref: PageRef, data: Uint8Array): DecodedArray | undefined {
  const decoder = fullDecoder(spec);
  const { data: values } = readPage({ view: new DataView(data.buffer, data.byteOffset, data.byteLength), offset: 0 }, ref.header, decoder, undefined, undefined, 0);
  return values === undefined ? undefined : convert(values, decoder);
}

/**
 * Decodes one data page's data (as read from the file) into its values in row order, undefined where the value or its
 * parent struct is null; a dictionary-encoded page's values taken from `dictionary`.
 */
function decodeRows(spec: ColumnSpec, ref: PageRef, data: Uint8Array, dictionary: DecodedArray | undefined): unknown[] {
  const decoder = fullDecoder(spec);
  const { header } = ref;
  let levels: { definitionLevels: number[] | undefined; dataPage: DecodedArray; encoding: string };
  if (header.type === 'DATA_PAGE' && header.data_page_header !== undefined) {
    const uncompressed = decompressPage(data, Number(header.uncompressed_page_size), decoder.codec, compressors);
    levels = { ...readDataPage(uncompressed, header.data_page_header, decoder), encoding: header.data_page_header.encoding };
  } else if (header.type === 'DATA_PAGE_V2' && header.data_page_header_v2 !== undefined) {
    levels = { ...readDataPageV2(data, header, decoder), encoding: header.data_page_header_v2.encoding };
  } else {
    return [];
  }
  // An index past the dictionary would come out as a missing value: damage, said so.
  if (dictionary !== undefined && levels.encoding.endsWith('_DICTIONARY')) {
    const indexes = levels.dataPage as ArrayLike<number>;
    for (let at = 0; at < indexes.length; at++) {
      const index = indexes[at] ?? 0;
      if (!(index < dictionary.length)) throw new Error(`a dictionary index ${index} past the ${dictionary.length} values of the dictionary`);
    }
  }
  // Values are stored for non-null entries only; the definition levels say which entries those are.
  const values = convertWithDictionary(levels.dataPage, dictionary, levels.encoding as never, decoder);
  if (levels.definitionLevels === undefined || levels.definitionLevels.length === 0) return Array.from(values as ArrayLike<unknown>);
  const out: unknown[] = [];
  let next = 0;
  for (const level of levels.definitionLevels) out.push(level === spec.maxDefinition ? values[next++] : undefined);
  return out;
}

/**
 * Decodes one data page's data (as read from the file) into its values in row order, null where the value or its
 * parent struct is null. Byte-array values are views into the page's decompressed buffer, not copies.
 */
export function decodeDataPage(spec: ColumnSpec, ref: PageRef, data: Uint8Array, dictionary: DecodedArray | undefined): (Uint8Array | string | null)[] {
  return decodeRows(spec, ref, data, dictionary).map((value) => (value instanceof Uint8Array || typeof value === 'string' ? value : null));
}

/**
 * A dictionary-encoded data page's entries (indexes into the dictionary page of `size` values) in row order, null where
 * a row has no value.
 *
 * @throws {Error} when an index is past the dictionary.
 */
export function decodeIndexPage(spec: ColumnSpec, ref: PageRef, data: Uint8Array, size: number): (number | null)[] {
  // Decoded through a dictionary whose every value is its own index.
  const identity = Array.from({ length: size }, (_, index) => index);
  return decodeRows(spec, ref, data, identity).map((value) => {
    if (value === undefined || value === null) return null;
    if (typeof value !== 'number') throw new Error(`a dictionary index past the ${size} values of the dictionary`);
    return value;
  });
}

/**
 * Reads one byte-array leaf column of one row group a page at a time, yielding each data page's values in row order
 * (null where the value or its parent struct is null). Memory stays at about one page, where parquet-wasm would load
 * the whole column chunk: a 1 GB row group of images is read in pages of about 1 MB.
 */
export async function* readColumnPages(
  file: FileHandle,
  metadata: FileMetaData,
  rowGroup: number,
  path: readonly string[],
): AsyncGenerator<(Uint8Array | string | null)[]> {
  const { spec, start, end } = columnSpec(metadata, rowGroup, path);
  let dictionary: DecodedArray | undefined;
  let rows = 0;
  for (let offset = start; offset < end; ) {
    const { header, length } = await readPageHeader(file, offset, end, FIRST_HEADER_WINDOW);
    const ref = { offset: offset + length, compressedSize: header.compressed_page_size, header, rows: rowsOf(header) };
    const page = new Uint8Array(ref.compressedSize);
    await file.read(page, 0, page.byteLength, ref.offset);
    offset = ref.offset + ref.compressedSize;
    if (header.type === 'DICTIONARY_PAGE') {
      dictionary = decodeDictionaryPage(spec, ref, page);
      continue;
    }
    const out = decodeDataPage(spec, ref, page, dictionary);
    if (out.length === 0) continue; // index pages and the like carry no values
    rows += out.length;
    yield out;
  }
  const expected = Number(metadata.row_groups[rowGroup]?.num_rows ?? 0);
  if (rows !== expected) throw new Error(`column ${path.join('.')} of row group ${rowGroup} held ${rows} values, expected ${expected}`);
}
