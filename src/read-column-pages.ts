import type { FileHandle } from 'node:fs/promises';
import { parquetMetadataAsync, parquetSchema, type FileMetaData } from 'hyparquet';
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

/** The footer of a parquet file, parsed by hyparquet (its own thrift reader), read from the end of the file. */
export async function readFooter(file: FileHandle, size: number): Promise<FileMetaData> {
  const tail = Math.min(size, 512 * 1024);
  const buffer = new Uint8Array(tail);
  await file.read(buffer, 0, tail, size - tail);
  const asyncBuffer = {
    byteLength: size,
    slice: async (start: number, end?: number): Promise<ArrayBuffer> => {
      const stop = end ?? size;
      if (start >= size - tail) return buffer.slice(start - (size - tail), stop - (size - tail)).buffer;
      const bytes = new Uint8Array(stop - start);
      await file.read(bytes, 0, bytes.byteLength, start);
      return bytes.buffer;
    },
  };
  return parquetMetadataAsync(asyncBuffer);
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
  const chunk = chunkOf(metadata, rowGroup, path);
  if (chunk === undefined) throw new Error(`no column ${path.join('.')} in row group ${rowGroup}`);
  const schemaPath = getTreePath(parquetSchema(metadata), [...path]);
  const element = schemaPath[schemaPath.length - 1]?.element;
  if (element === undefined) throw new Error(`no schema element for ${path.join('.')}`);
  const decoder: ColumnDecoder = {
    pathInSchema: [...path],
    type: chunk.type,
    element,
    schemaPath,
    codec: chunk.codec,
    parsers: DEFAULT_PARSERS,
    compressors,
    // hyparquet decodes unannotated byte arrays as UTF-8 text by default; image bytes must stay bytes.
    utf8: false,
  };
  let offset = Number(chunk.dictionary_page_offset ?? chunk.data_page_offset);
  if (chunk.dictionary_page_offset !== undefined && Number(chunk.dictionary_page_offset) <= 0) offset = Number(chunk.data_page_offset);
  const end = offset + Number(chunk.total_compressed_size);
  let dictionary: DecodedArray | undefined;
  let rows = 0;
  const maxDefinition = getMaxDefinitionLevel(schemaPath);
  while (offset < end) {
    let window = Math.min(FIRST_HEADER_WINDOW, end - offset);
    let header: PageHeader | undefined;
    let headerLength = 0;
    for (;;) {
      const bytes = new Uint8Array(window);
      await file.read(bytes, 0, window, offset);
      try {
        const reader = { view: new DataView(bytes.buffer), offset: 0 };
        header = parquetHeader(reader);
        headerLength = reader.offset;
        break;
      } catch (error) {
        if (window >= end - offset || window >= MAX_HEADER_WINDOW) throw error;
        window = Math.min(window * 4, end - offset, MAX_HEADER_WINDOW);
      }
    }
    const page = new Uint8Array(header.compressed_page_size);
    await file.read(page, 0, page.byteLength, offset + headerLength);
    offset += headerLength + page.byteLength;
    if (header.type === 'DICTIONARY_PAGE') {
      const { data } = readPage({ view: new DataView(page.buffer), offset: 0 }, header, decoder, undefined, undefined, 0);
      if (data !== undefined) dictionary = convert(data, decoder);
      continue;
    }
    let levels: { definitionLevels: number[] | undefined; dataPage: DecodedArray; encoding: string };
    if (header.type === 'DATA_PAGE' && header.data_page_header !== undefined) {
      const uncompressed = decompressPage(page, Number(header.uncompressed_page_size), decoder.codec, compressors);
      levels = { ...readDataPage(uncompressed, header.data_page_header, decoder), encoding: header.data_page_header.encoding };
    } else if (header.type === 'DATA_PAGE_V2' && header.data_page_header_v2 !== undefined) {
      levels = { ...readDataPageV2(page, header, decoder), encoding: header.data_page_header_v2.encoding };
    } else {
      continue; // index pages and the like carry no values
    }
    // Values are stored for non-null entries only; the definition levels say which entries those are.
    const values = convertWithDictionary(levels.dataPage, dictionary, levels.encoding as never, decoder);
    const out: (Uint8Array | string | null)[] = [];
    const valueOf = (value: unknown): Uint8Array | string | null => (value instanceof Uint8Array || typeof value === 'string' ? value : null);
    if (levels.definitionLevels === undefined || levels.definitionLevels.length === 0) {
      for (const value of values) out.push(valueOf(value));
    } else {
      let next = 0;
      for (const level of levels.definitionLevels) out.push(level === maxDefinition ? valueOf(values[next++]) : null);
    }
    rows += out.length;
    yield out;
  }
  const expected = Number(metadata.row_groups[rowGroup]?.num_rows ?? 0);
  if (rows !== expected) throw new Error(`column ${path.join('.')} of row group ${rowGroup} held ${rows} values, expected ${expected}`);
}
