import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, futimesSync, mkdirSync, openSync, readdirSync, rmSync, writeSync, writevSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { readFully } from '../util/read-fully.js';

/**
 * The packs of the cache: the images a run re-encoded, and its rejects, appended to a few files rather than written
 * one file each. A file an image cost the first run of `--images jpeg` 30% more CPU than `--no-cache` on the 2,000-row
 * bench sample (creating 2,000 files a run, and looking for two more an image), most of it in the kernel.
 *
 * A pack is written by one thread of one run: `images/<policy>/<run>-<thread>-<n>.pack`, a new one past
 * {@link PACK_BYTES}. Each record holds its kind, its key, the SHA-256 of its content, its length and its content;
 * beside the pack, `<same name>.idx` has one fixed-size entry a record, with its CRC-32, written after the record.
 * A reader trusts nothing: an entry that fails its CRC is skipped, a record that does not match its entry or its
 * SHA-256 is not used. Records are never changed or removed one by one: whole packs go, least recently used first.
 */

export type PackKind = 'bin' | 'rej';

/** What a pack starts with, and each record. */
const PACK_MAGIC = Buffer.from('RLVP1\n');
const RECORD_MAGIC = Buffer.from('RLVR');
/** A record's header: magic, kind, key (32), SHA-256 of the content (32), content length (uint32 LE). */
const RECORD_HEADER = RECORD_MAGIC.byteLength + 1 + 32 + 32 + 4;
/** An index entry: key (32), offset and length of the record's content (uint32 LE each), kind, three zero bytes, CRC-32. */
const ENTRY = 48;
const KIND_BYTE: Record<PackKind, number> = { bin: 0x62, rej: 0x72 };

/**
 * A pack is closed and the next begun past this size: whole packs are what the cache's bound removes. (An image larger
 * than this is not cached.)
 */
export const PACK_BYTES = 256 * 2 ** 20;

/** The names of packs and their indexes: `<pid>-<time>-<host>-<thread>-<n>`. */
export const PACK_NAME = /^(\d+)-(\d+)-(.+)-(\d+)-(\d+)\.(pack|idx)$/;

export interface PackedEntry {
  pack: string;
  offset: number;
  length: number;
  kind: PackKind;
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** The largest index read: one entry a record of at least a kilobyte in a full pack is 12 MiB. */
const MAX_INDEX_BYTES = 64 * 2 ** 20;

/**
 * A file of the cache opened for reading, or null: only a regular file, never through a link (a link in the cache's
 * place leads out of it) and never waiting (a FIFO named like a pack would block the worker for good).
 */
function openOwnFile(file: string): { fd: number; size: number } | null {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0));
  } catch {
    return null;
  }
  try {
    const info = fstatSync(fd);
    if (info.isFile()) return { fd, size: info.size };
  } catch {
    // fall through: not usable
  }
  closeSync(fd);
  return null;
}

/** The entries of one index file, those whose CRC holds; `onEntry` gets each with its key (base64). */
export function readPackIndex(file: string, onEntry: (key: string, entry: PackedEntry) => void): void {
  const opened = openOwnFile(file);
  if (opened === null) return;
  let data: Buffer;
  try {
    if (opened.size > MAX_INDEX_BYTES) return;
    data = Buffer.from(readFully(opened.fd, opened.size, 0));
  } catch {
    return;
  } finally {
    closeSync(opened.fd);
  }
  const pack = file.replace(/\.idx$/, '.pack');
  for (let at = 0; at + ENTRY <= data.byteLength; at += ENTRY) {
    if (crc32(data.subarray(at, at + ENTRY - 4)) !== data.readUInt32LE(at + ENTRY - 4)) continue;
    const kindByte = data[at + 40];
    const kind = kindByte === KIND_BYTE.bin ? 'bin' : kindByte === KIND_BYTE.rej ? 'rej' : null;
    if (kind === null) continue;
    onEntry(data.toString('base64', at, at + 32), { pack, offset: data.readUInt32LE(at + 32), length: data.readUInt32LE(at + 36), kind });
  }
}

/** The index files of a policy's folder (none when it is not a folder, or holds none). */
export function packIndexes(folder: string): string[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  return names.filter((name) => PACK_NAME.test(name) && name.endsWith('.idx')).map((name) => path.join(folder, name));
}

/** Packs a reader keeps open at once (least recently used closed first): a cache can hold thousands. */
const OPEN_PACKS = 16;

/** Reads records out of packs, keeping the last few open, and marks each pack used once a run (for the bound). */
export class PackReader {
  /** Open packs by path, least recently used first. */
  readonly #open = new Map<string, { fd: number; size: number }>();
  /** Packs that could not be opened as files of the cache: not tried again in the run. */
  readonly #unopenable = new Set<string>();
  readonly #touched = new Set<string>();

  /** The content of the record, or null when it is missing, cut short or not what its entry and hash say. */
  read(key: string, entry: PackedEntry): Buffer | null {
    if (entry.offset < PACK_MAGIC.byteLength + RECORD_HEADER) return null;
    const pack = this.#pack(entry.pack);
    if (pack === null || entry.offset + entry.length > pack.size) return null;
    let record: Buffer;
    try {
      record = Buffer.from(readFully(pack.fd, RECORD_HEADER + entry.length, entry.offset - RECORD_HEADER));
    } catch {
      return null;
    }
    if (record.byteLength !== RECORD_HEADER + entry.length) return null;
    let at = 0;
    const field = (length: number): Buffer => record.subarray(at, (at += length));
    const whole =
      field(RECORD_MAGIC.byteLength).equals(RECORD_MAGIC) &&
      field(1)[0] === KIND_BYTE[entry.kind] &&
      field(32).toString('base64') === key &&
      field(32).equals(sha256(record.subarray(RECORD_HEADER))) &&
      field(4).readUInt32LE() === entry.length;
    return whole ? record.subarray(RECORD_HEADER) : null;
  }

  /** How many packs are open now. */
  get openCount(): number {
    return this.#open.size;
  }

  #pack(file: string): { fd: number; size: number } | null {
    const known = this.#open.get(file);
    if (known !== undefined) {
      this.#open.delete(file);
      this.#open.set(file, known);
      return known;
    }
    if (this.#unopenable.has(file)) return null;
    const opened = openOwnFile(file);
    if (opened === null) {
      this.#unopenable.add(file);
      return null;
    }
    if (!this.#touched.has(file)) {
      // Used now: the last pack to go when the cache is trimmed (least recently used first).
      this.#touched.add(file);
      const now = new Date();
      try {
        futimesSync(opened.fd, now, now);
      } catch {
        // a cache this run cannot write: read all the same
      }
    }
    this.#open.set(file, opened);
    for (const [old, pack] of this.#open) {
      if (this.#open.size <= OPEN_PACKS) break;
      closeQuietly(pack.fd);
      this.#open.delete(old);
    }
    return opened;
  }

  close(): void {
    for (const pack of this.#open.values()) closeQuietly(pack.fd);
    this.#open.clear();
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // what was read was read whole
  }
}

/** One thread's packs for a run: records appended, and their index entries after them. */
export class PackWriter {
  readonly #folder: string;
  readonly #name: string;
  #count = 0;
  #pack: { fd: number; idx: number; length: number } | null = null;

  /** `name`: the run's and thread's, `<pid>-<time>-<host>-<thread>`; the packs add their number. */
  constructor(folder: string, name: string) {
    this.#folder = folder;
    this.#name = name;
  }

  /** Appends a record. Throws when the pack cannot be written: the caller gives up caching, never a row. */
  append(key: string, kind: PackKind, content: Uint8Array): void {
    if (content.byteLength > PACK_BYTES) return; // not cached: more than a pack holds
    const pack = this.#current(RECORD_HEADER + content.byteLength);
    const header = Buffer.alloc(RECORD_HEADER);
    let at = RECORD_MAGIC.copy(header, 0);
    at = header.writeUInt8(KIND_BYTE[kind], at);
    at += Buffer.from(key, 'base64').copy(header, at, 0, 32);
    at += sha256(content).copy(header, at);
    header.writeUInt32LE(content.byteLength, at);
    const offset = pack.length + RECORD_HEADER;
    // A short write (a full disk) would leave the pack's length unknown: stop here; a reader finds no entry for it.
    if (writevSync(pack.fd, [header, content]) !== RECORD_HEADER + content.byteLength) throw new Error('short write');
    pack.length = offset + content.byteLength;
    const entry = Buffer.alloc(ENTRY);
    Buffer.from(key, 'base64').copy(entry, 0, 0, 32);
    entry.writeUInt32LE(offset, 32);
    entry.writeUInt32LE(content.byteLength, 36);
    entry.writeUInt8(KIND_BYTE[kind], 40);
    entry.writeUInt32LE(crc32(entry.subarray(0, ENTRY - 4)), ENTRY - 4);
    if (writeSync(pack.idx, entry) !== ENTRY) throw new Error('short write');
  }

  /** The pack to append `bytes` to: the current one, or a new one (never an existing file: `wx`). */
  #current(bytes: number): { fd: number; idx: number; length: number } {
    if (this.#pack !== null && this.#pack.length + bytes <= PACK_BYTES) return this.#pack;
    this.close();
    if (this.#count === 0) mkdirSync(this.#folder, { recursive: true });
    const base = path.join(this.#folder, `${this.#name}-${this.#count++}`);
    const fd = openSync(`${base}.pack`, 'wx');
    let idx: number;
    try {
      if (writeSync(fd, PACK_MAGIC) !== PACK_MAGIC.byteLength) throw new Error('short write');
      idx = openSync(`${base}.idx`, 'wx');
    } catch (error) {
      // The pack this run has just made (wx), and nothing in it: not left behind.
      closeQuietly(fd);
      rmSync(`${base}.pack`, { force: true });
      throw error;
    }
    this.#pack = { fd, idx, length: PACK_MAGIC.byteLength };
    return this.#pack;
  }

  close(): void {
    if (this.#pack === null) return;
    closeQuietly(this.#pack.fd);
    closeQuietly(this.#pack.idx);
    this.#pack = null;
  }
}
