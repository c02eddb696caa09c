import { openAsBlob } from 'node:fs';
import { tableFromIPC } from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { inspectInput } from '../plan/inspect-input.js';

/** Every row's image bytes, in input order (repeats included), each a copy of its own; rows without bytes skipped. */
export async function readImages(input: string): Promise<Uint8Array[]> {
  const plan = await inspectInput([input], { maxRowGroupBytes: 3 * 2 ** 30, streamRowGroupBytes: 3 * 2 ** 30 });
  const images: Uint8Array[] = [];
  for (const file of plan.files) {
    const parquet = await ParquetFile.fromFile(await openAsBlob(file.path));
    for (const group of file.rowGroups) {
      const table = tableFromIPC((await parquet.read({ rowGroups: [group.index], columns: ['image'] })).intoIPCStream());
      const bytes = table.getChild('image')?.getChild('bytes');
      for (let i = 0; i < table.numRows; i++) {
        const value: unknown = bytes?.get(i);
        if (value instanceof Uint8Array) images.push(value.slice());
      }
    }
    parquet.free();
  }
  return images;
}

/** Images framed for a Python reader on stdin: each as a 4-byte little-endian length, then its bytes. */
export function framed(images: Uint8Array[]): Buffer {
  return Buffer.concat(images.flatMap((image) => [Buffer.from(new Uint32Array([image.byteLength]).buffer), Buffer.from(image)]));
}
