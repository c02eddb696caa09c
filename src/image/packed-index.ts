import path from 'node:path';
import { packIndexes, readPackIndex, type PackedEntry, type PackKind } from './image-pack.js';

/** A slot of the table: the key (eight 32-bit words), then the pack's number, the offset, the length and the kind. */
const SLOT_WORDS = 12;
const KIND_CODE: Record<PackKind, number> = { bin: 1, rej: 2 };

/**
 * The packed entries of earlier runs under one policy, as a run's workers all read them: built once, in memory they
 * share (about 100 bytes an entry; sent with every task, so nothing in it is copied).
 */
export interface PackedIndex {
  /** The packs' names in their folder, by number, a line each (UTF-8). */
  names: SharedArrayBuffer;
  /** Open addressing over the keys' first word; a key can have several slots (a damaged record and a later one). */
  table: SharedArrayBuffer;
}

/** Reads every index of a policy's folder into one table (on the main thread, before the run); null: an empty one. */
export function buildPackedIndex(folder: string | null): { index: PackedIndex; entries: number } {
  const packs: string[] = [];
  const found: [Buffer, number, PackedEntry][] = [];
  for (const file of folder === null ? [] : packIndexes(folder)) {
    readPackIndex(file, (key, entry) => {
      if (packs.at(-1) !== entry.pack) packs.push(entry.pack);
      found.push([Buffer.from(key, 'base64'), packs.length - 1, entry]);
    });
  }
  const slots = 2 ** Math.max(4, Math.ceil(Math.log2(2 * found.length + 1)));
  const table = new Int32Array(new SharedArrayBuffer(slots * SLOT_WORDS * 4));
  for (const [key, pack, entry] of found) {
    let slot = key.readUInt32LE(0) & (slots - 1);
    while (table[slot * SLOT_WORDS + 11] !== 0) slot = (slot + 1) & (slots - 1);
    const at = slot * SLOT_WORDS;
    for (let word = 0; word < 8; word++) table[at + word] = key.readInt32LE(word * 4);
    table.set([pack, entry.offset, entry.length, KIND_CODE[entry.kind]], at + 8);
  }
  const text = Buffer.from(packs.map((pack) => path.basename(pack)).join('\n'));
  const names = new SharedArrayBuffer(text.byteLength);
  text.copy(new Uint8Array(names));
  return { index: { names, table: table.buffer as SharedArrayBuffer }, entries: found.length };
}

/** The packs of an index, by number, as paths in `folder`. */
export function packedNames(index: PackedIndex, folder: string): string[] {
  if (index.names.byteLength === 0) return [];
  return Buffer.from(new Uint8Array(index.names)).toString('utf8').split('\n').map((name) => path.join(folder, name));
}

/** The entries of a key (base64) in the table, in the order they were found; `packs` from {@link packedNames}. */
export function packedEntries(index: PackedIndex, packs: readonly string[], key: string): PackedEntry[] {
  const words = Buffer.from(key, 'base64');
  const table = new Int32Array(index.table);
  const slots = table.length / SLOT_WORDS;
  if (words.byteLength !== 32 || slots === 0) return [];
  const entries: PackedEntry[] = [];
  for (let slot = words.readUInt32LE(0) & (slots - 1); table[slot * SLOT_WORDS + 11] !== 0; slot = (slot + 1) & (slots - 1)) {
    const at = slot * SLOT_WORDS;
    let same = true;
    for (let word = 0; word < 8 && same; word++) same = table[at + word] === words.readInt32LE(word * 4);
    const pack = packs[table[at + 8] ?? -1];
    if (!same || pack === undefined) continue;
    entries.push({ pack, offset: table[at + 9] ?? 0, length: table[at + 10] ?? 0, kind: table[at + 11] === KIND_CODE.bin ? 'bin' : 'rej' });
  }
  return entries;
}
