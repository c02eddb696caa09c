import { tableFromIPC, type Vector } from 'apache-arrow';
import type { SourceImage, SourceImages, SourceRow } from './types.js';

function stringAt(vector: Vector | null, index: number): string | null {
  const value: unknown = vector?.get(index) ?? null;
  return typeof value === 'string' ? value : null;
}

function imageAt(vector: Vector | null, index: number): SourceImage | null {
  if (vector === null || !vector.isValid(index)) return null;
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

/**
 * The rows of a source batch as plain objects: from its Arrow IPC stream, with the images from `images` when the image
 * column was read page by page.
 */
export function readSourceRows(ipc: Uint8Array, images: SourceImages | undefined): SourceRow[] {
  const table = tableFromIPC(ipc);
  const column = (name: string): Vector | null => table.getChild(name);
  const columns = {
    ds_name: column('ds_name'),
    image: column('image'),
    question: column('question'),
    chosen: column('chosen'),
    rejected: column('rejected'),
    origin_dataset: column('origin_dataset'),
    origin_split: column('origin_split'),
    idx: column('idx'),
    image_path: column('image_path'),
  };
  const rows: SourceRow[] = [];
  for (let i = 0; i < table.numRows; i++) {
    rows.push({
      ds_name: stringAt(columns.ds_name, i),
      image: images === undefined ? imageAt(columns.image, i) : pagedImageAt(images, i),
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
