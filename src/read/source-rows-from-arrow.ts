import { tableFromIPC, type Vector } from 'apache-arrow';
import { DEFAULT_COLUMNS, EXTRA_COLUMNS, type SourceLayout } from '../source/source-layout.js';
import type { SourceImage, SourceImages, SourceRow } from '../source/source-row.js';

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

/** An item of a list that is an object, as a record; null for anything else (null items included). */
function record(item: unknown): Record<string, unknown> | null {
  return item !== null && typeof item === 'object' && !Array.isArray(item) ? (item as Record<string, unknown>) : null;
}

/**
 * The text of a message's content: the first text part of a list of parts, or of a JSON string of one (as datasets
 * 5.x writes a prompt's content when its parts have different keys); a plain string as it is.
 */
function contentText(content: unknown): string | null {
  let parts = content;
  if (typeof content === 'string') {
    try {
      parts = JSON.parse(content) as unknown;
    } catch {
      return content;
    }
    // A string that merely reads as JSON ("2", "true", "[1, 2]") is text.
    if (!Array.isArray(parts) || !parts.every((part) => record(part) !== null && 'type' in (record(part) ?? {}))) return content;
  }
  if (!Array.isArray(parts)) return null;
  for (const item of parts) {
    const part = record(item);
    if (part?.type === 'text' && typeof part.text === 'string') return part.text;
  }
  return null;
}

/** The text of the first message of `role` in a list of messages (a system message before the prompt is passed over). */
function messageText(messages: unknown, role: 'user' | 'assistant'): string | null {
  if (!Array.isArray(messages)) return null;
  for (const item of messages) {
    const message = record(item);
    if (message?.role === role) return contentText(message.content);
  }
  return null;
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
      return value !== null && typeof value === 'object' ? (JSON.parse(JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? String(item) : item))) as unknown) : value;
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
      question: messageText(prompts[index], 'user'),
      chosen: messageText(chosen[index], 'assistant'),
      rejected: messageText(rejected[index], 'assistant'),
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
