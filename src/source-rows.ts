import { tableFromIPC, type Vector } from 'apache-arrow';
import { DEFAULT_COLUMNS, EXTRA_COLUMNS, type SourceLayout } from './source-layout.js';
import type { SourceImage, SourceImages, SourceRow } from './types.js';

function stringAt(vector: Vector | null, index: number): string | null {
  const value: unknown = vector?.get(index) ?? null;
  return typeof value === 'string' ? value : null;
}

/** An image from a `datasets` Image (struct of bytes and path), plain bytes, or a path to an image file. */
function imageAt(vector: Vector | null, index: number, form: 'struct' | 'binary' | 'path'): SourceImage | null {
  if (vector === null || !vector.isValid(index)) return null;
  if (form === 'binary') {
    const bytes: unknown = vector.get(index);
    return { bytes: bytes instanceof Uint8Array ? bytes : null, path: null };
  }
  if (form === 'path') return { bytes: null, path: stringAt(vector, index) };
  const bytes: unknown = vector.getChild('bytes')?.get(index) ?? null;
  const path: unknown = vector.getChild('path')?.get(index) ?? null;
  return {
    bytes: bytes instanceof Uint8Array ? bytes : null,
    path: typeof path === 'string' ? path : null,
  };
}

/** An image read page by page: a null struct and a struct with null bytes both read as null bytes here. */
function pagedImageAt(images: SourceImages, index: number): SourceImage | null {
  const bytes = images.bytes[index] ?? null;
  const path = images.paths[index] ?? null;
  return bytes === null && path === null ? null : { bytes, path };
}

interface Message {
  content?: unknown;
}

/** The first text part of the first message of a converted row's list of messages (or its JSON string form). */
function textOf(messages: unknown): string | null {
  const first = Array.isArray(messages) ? (messages[0] as Message | undefined) : undefined;
  let content = first?.content;
  if (typeof content === 'string') {
    // datasets 5.x writes a prompt's content as a JSON string when its parts have different keys.
    try {
      content = JSON.parse(content) as unknown;
    } catch {
      return content as string;
    }
  }
  if (!Array.isArray(content)) return null;
  const part = (content as { type?: unknown; text?: unknown }[]).find((item) => item.type === 'text' && typeof item.text === 'string');
  return typeof part?.text === 'string' ? part.text : null;
}

/** A converted row's first image. */
function firstImage(images: unknown): SourceImage | null {
  const image = Array.isArray(images) ? (images[0] as { bytes?: unknown; path?: unknown } | null | undefined) : undefined;
  if (image === undefined || image === null) return null;
  return { bytes: image.bytes instanceof Uint8Array ? image.bytes : null, path: typeof image.path === 'string' ? image.path : null };
}

/** The rows of a converted dataset, taken back apart: the question, the answers and the image of each. */
function convertedRows(vector: (name: string) => Vector | null, rows: number): SourceRow[] {
  const column = (name: string): unknown[] => {
    const found = vector(name);
    return Array.from({ length: rows }, (_, index) => {
      const value: unknown = found?.get(index) ?? null;
      // Arrow's lists and structs, as plain arrays and objects.
      return value !== null && typeof value === 'object' ? (JSON.parse(JSON.stringify(value)) as unknown) : value;
    });
  };
  const prompts = column('prompt');
  const chosen = column('chosen');
  const rejected = column('rejected');
  const images = vector('images');
  const result: SourceRow[] = [];
  for (let index = 0; index < rows; index++) {
    const list: unknown = images?.get(index) ?? null;
    const items = list === null ? null : Array.from(list as Iterable<{ bytes?: unknown; path?: unknown } | null>, (item) => (item === null ? null : { bytes: item.bytes, path: item.path }));
    result.push({
      ds_name: null,
      image: firstImage(items),
      question: textOf(prompts[index]),
      chosen: textOf(chosen[index]),
      rejected: textOf(rejected[index]),
      origin_dataset: null,
      origin_split: null,
      idx: null,
      image_path: null,
    });
  }
  return result;
}

/**
 * The rows of a source batch as plain objects, by what their columns hold (see SourceLayout): from its Arrow IPC
 * stream, with the images from `images` when the image column was read page by page.
 */
export function readSourceRows(ipc: Uint8Array, images: SourceImages | undefined, layout: SourceLayout = { kind: 'source', columns: DEFAULT_COLUMNS, image: 'struct', extras: [...EXTRA_COLUMNS] }): SourceRow[] {
  const table = tableFromIPC(ipc);
  const column = (name: string): Vector | null => table.getChild(name);
  if (layout.kind === 'converted') return convertedRows(column, table.numRows);
  const extras = new Set<string>(layout.extras);
  const extra = (name: (typeof EXTRA_COLUMNS)[number]): Vector | null => (extras.has(name) ? column(name) : null);
  const columns = {
    ds_name: extra('ds_name'),
    image: column(layout.columns.image),
    question: column(layout.columns.question),
    chosen: column(layout.columns.chosen),
    rejected: column(layout.columns.rejected),
    origin_dataset: extra('origin_dataset'),
    origin_split: extra('origin_split'),
    idx: extra('idx'),
    image_path: extra('image_path'),
  };
  const rows: SourceRow[] = [];
  for (let i = 0; i < table.numRows; i++) {
    rows.push({
      ds_name: stringAt(columns.ds_name, i),
      image: images === undefined ? imageAt(columns.image, i, layout.image) : pagedImageAt(images, i),
      question: stringAt(columns.question, i),
      chosen: stringAt(columns.chosen, i),
      rejected: stringAt(columns.rejected, i),
      origin_dataset: stringAt(columns.origin_dataset, i),
      origin_split: stringAt(columns.origin_split, i),
      idx: stringAt(columns.idx, i),
      image_path: stringAt(columns.image_path, i),
    });
  }
  return rows;
}
