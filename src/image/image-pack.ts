import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, utimesSync, writeSync, writevSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';

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

/** The entries of one index file, those whose CRC holds; `onEntry` gets each with its key (base64). */
export function readPackIndex(file: string, onEntry: (key: string, entry: PackedEntry) => void): void {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return;
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

/** Reads records out of packs, keeping each pack open for the run, and marks each pack used once (for the bound). */
export class PackReader {
  readonly #open = new Map<string, number | null>();

  /** The content of the record, or null when it is missing, cut short or not what its entry and hash say. */
  read(key: string, entry: PackedEntry): Buffer | null {
    if (entry.length > PACK_BYTES || entry.offset < PACK_MAGIC.byteLength + RECORD_HEADER) return null;
    const fd = this.#fd(entry.pack);
    if (fd === null) return null;
    const record = Buffer.alloc(RECORD_HEADER + entry.length);
    try {
      if (readSync(fd, record, 0, record.byteLength, entry.offset - RECORD_HEADER) !== record.byteLength) return null;
    } catch {
      return null;
    }
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

  #fd(pack: string): number | null {
    let fd = this.#open.get(pack);
    if (fd !== undefined) return fd;
    try {
      fd = openSync(pack, 'r');
      // Used now: the last pack to go when the cache is trimmed (least recently used first).
      const now = new Date();
      utimesSync(pack, now, now);
    } catch {
      fd ??= null;
    }
    this.#open.set(pack, fd);
    return fd;
  }

  close(): void {
    for (const fd of this.#open.values()) if (fd !== null) closeSync(fd);
    this.#open.clear();
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
    writeSync(fd, PACK_MAGIC);
    this.#pack = { fd, idx: openSync(`${base}.idx`, 'wx'), length: PACK_MAGIC.byteLength };
    return this.#pack;
  }

  close(): void {
    if (this.#pack === null) return;
    closeSync(this.#pack.fd);
    closeSync(this.#pack.idx);
    this.#pack = null;
  }
}
