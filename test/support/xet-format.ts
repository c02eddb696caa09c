/**
 * The byte formats of Xet storage that the local Hub reads and writes, written from the public Xet protocol
 * documentation (huggingface.co/docs/xet) and what `@huggingface/hub` sends: xorbs (chunks, each behind an 8-byte
 * header, raw or in an LZ4 frame, optionally byte-grouped by 4) and shards (a header, a file info section, a xorb
 * ("CAS") info section and a 200-byte footer). Hashes travel as hex whose 16-digit groups are little-endian u64s.
 */

export const HASH_BYTES = 32;
const SHARD_MAGIC = Buffer.from([
  ...Buffer.from('HFRepoMetaData'),
  0, 85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169,
]);
const SHARD_HEADER_BYTES = 48;
const SHARD_FOOTER_BYTES = 200;
const ENTRY_BYTES = 48;
const FLAG_VERIFICATION = 0x80000000;
const FLAG_METADATA_EXT = 0x40000000;
const CHUNK_HEADER_BYTES = 8;
const LZ4_FRAME_MAGIC = 0x184d2204;

/** A hash as `@huggingface/hub` writes it in hex, read from 32 bytes of a shard. */
export function readHash(buffer: Buffer, offset: number): string {
  let hex = '';
  for (let group = 0; group < 4; group++) {
    for (let byte = 7; byte >= 0; byte--) hex += (buffer[offset + group * 8 + byte] ?? 0).toString(16).padStart(2, '0');
  }
  return hex;
}

export function writeHash(hex: string, buffer: Buffer, offset: number): void {
  for (let group = 0; group < 4; group++) {
    for (let byte = 0; byte < 8; byte++) buffer[offset + group * 8 + byte] = parseInt(hex.slice(group * 16 + (7 - byte) * 2, group * 16 + (8 - byte) * 2), 16);
  }
}

const isBookend = (buffer: Buffer, offset: number): boolean => buffer.subarray(offset, offset + HASH_BYTES).every((byte) => byte === 0xff);

/** Decodes one LZ4 block into `out` from `at`; returns where the output ends. */
function lz4Block(source: Buffer, out: Buffer, at: number): number {
  let read = 0;
  let write = at;
  const length = (start: number): [number, number] => {
    let value = start;
    if (start === 15) {
      for (;;) {
        const byte = source[read++] ?? 0;
        value += byte;
        if (byte !== 255) break;
      }
    }
    return [value, read];
  };
  while (read < source.length) {
    const token = source[read++] ?? 0;
    const [literals] = length(token >> 4);
    source.copy(out, write, read, read + literals);
    read += literals;
    write += literals;
    if (read >= source.length) break;
    const back = source.readUInt16LE(read);
    read += 2;
    if (back === 0 || back > write) throw new Error(`LZ4 match offset ${back} out of range`);
    const [match] = length(token & 15);
    for (let copied = 0; copied < match + 4; copied++, write++) out[write] = out[write - back] ?? 0;
  }
  return write;
}

/** Decodes an LZ4 frame whose content is `size` bytes. */
export function lz4Frame(frame: Buffer, size: number): Buffer {
  if (frame.readUInt32LE(0) !== LZ4_FRAME_MAGIC) throw new Error('not an LZ4 frame');
  const flags = frame[4] ?? 0;
  let at = 6 + ((flags & 0x08) !== 0 ? 8 : 0) + ((flags & 0x01) !== 0 ? 4 : 0) + 1;
  const out = Buffer.alloc(size);
  let written = 0;
  for (;;) {
    const word = frame.readUInt32LE(at);
    at += 4;
    if (word === 0) break;
    const blockBytes = word & 0x7fffffff;
    const block = frame.subarray(at, at + blockBytes);
    if ((word & 0x80000000) !== 0) written += block.copy(out, written);
    else written = lz4Block(block, out, written);
    at += blockBytes + ((flags & 0x10) !== 0 ? 4 : 0);
  }
  if (written !== size) throw new Error(`LZ4 frame holds ${written} bytes, its chunk header says ${size}`);
  return out;
}

/** Undoes byte grouping: group g holds the bytes at positions ≡ g (mod 4), groups one after another. */
function regroup(grouped: Buffer): Buffer {
  const out = Buffer.alloc(grouped.length);
  const split = Math.floor(grouped.length / 4);
  const rem = grouped.length % 4;
  let from = 0;
  for (let group = 0; group < 4; group++) {
    const count = split + (group < rem ? 1 : 0);
    for (let i = 0; i < count; i++) out[i * 4 + group] = grouped[from + i] ?? 0;
    from += count;
  }
  return out;
}

/** The chunks of a serialized xorb, decompressed, in order. */
export function xorbChunks(xorb: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < xorb.length; ) {
    if (at + CHUNK_HEADER_BYTES > xorb.length || xorb[at] !== 0) throw new Error(`bad chunk header at byte ${at} of the xorb`);
    const stored = xorb.readUIntLE(at + 1, 3);
    const scheme = xorb[at + 4];
    const size = xorb.readUIntLE(at + 5, 3);
    const body = xorb.subarray(at + CHUNK_HEADER_BYTES, at + CHUNK_HEADER_BYTES + stored);
    if (body.length !== stored) throw new Error(`chunk at byte ${at} of the xorb is cut short`);
    if (scheme === 0) chunks.push(Buffer.from(body));
    else if (scheme === 1) chunks.push(lz4Frame(body, size));
    else if (scheme === 2) chunks.push(regroup(lz4Frame(body, size)));
    else throw new Error(`unknown chunk compression scheme ${scheme}`);
    if (chunks.at(-1)?.length !== size) throw new Error(`chunk at byte ${at} is not ${size} bytes`);
    at += CHUNK_HEADER_BYTES + stored;
  }
  return chunks;
}

export interface ShardFile {
  hash: string;
  segments: { xorb: string; bytes: number; start: number; end: number; rangeHash: string | null }[];
  sha256: string | null;
}

export interface ShardXorb {
  hash: string;
  chunks: { hash: string; offset: number; bytes: number }[];
}

/** Reads an uploaded shard: the files it describes and the xorbs it registers. */
export function parseShard(shard: Buffer): { files: ShardFile[]; xorbs: ShardXorb[] } {
  if (!shard.subarray(0, SHARD_MAGIC.length).equals(SHARD_MAGIC) || shard.readBigUInt64LE(32) !== 2n) throw new Error('not a version 2 shard');
  const footer = shard.length - Number(shard.readBigUInt64LE(40));
  if (footer < SHARD_HEADER_BYTES || shard.readBigUInt64LE(footer) !== 1n) throw new Error('bad shard footer');
  const files: ShardFile[] = [];
  for (let at = Number(shard.readBigUInt64LE(footer + 8)); !isBookend(shard, at); ) {
    const hash = readHash(shard, at);
    const flags = shard.readUInt32LE(at + 32);
    const count = shard.readUInt32LE(at + 36);
    at += ENTRY_BYTES;
    const segments: ShardFile['segments'] = [];
    for (let i = 0; i < count; i++, at += ENTRY_BYTES) {
      segments.push({ xorb: readHash(shard, at), bytes: shard.readUInt32LE(at + 36), start: shard.readUInt32LE(at + 40), end: shard.readUInt32LE(at + 44), rangeHash: null });
    }
    if ((flags & FLAG_VERIFICATION) !== 0) for (const segment of segments) (segment.rangeHash = readHash(shard, at)), (at += ENTRY_BYTES);
    let sha256: string | null = null;
    if ((flags & FLAG_METADATA_EXT) !== 0) {
      // The client writes the sha256's hex as it writes any hash: reading it so gives the hex back.
      sha256 = readHash(shard, at);
      at += ENTRY_BYTES;
    }
    files.push({ hash, segments, sha256 });
  }
  const xorbs: ShardXorb[] = [];
  for (let at = Number(shard.readBigUInt64LE(footer + 16)); !isBookend(shard, at); ) {
    const hash = readHash(shard, at);
    const count = shard.readUInt32LE(at + 36);
    at += ENTRY_BYTES;
    const chunks: ShardXorb['chunks'] = [];
    for (let i = 0; i < count; i++, at += ENTRY_BYTES) chunks.push({ hash: readHash(shard, at), offset: shard.readUInt32LE(at + 32), bytes: shard.readUInt32LE(at + 36) });
    xorbs.push({ hash, chunks });
  }
  return { files, xorbs };
}

/**
 * A shard answering a global-dedup query: no files, the xorbs given (chunk hashes as the caller passes them, keyed with
 * `hmacKey` by the caller), and the footer with the key and empty lookup tables.
 */
export function dedupShard(xorbs: ShardXorb[], hmacKey: string): Buffer {
  const xorbBytes = xorbs.reduce((sum, xorb) => sum + ENTRY_BYTES * (1 + xorb.chunks.length), 0);
  const shard = Buffer.alloc(SHARD_HEADER_BYTES + ENTRY_BYTES + xorbBytes + ENTRY_BYTES + SHARD_FOOTER_BYTES);
  SHARD_MAGIC.copy(shard, 0);
  shard.writeBigUInt64LE(2n, 32);
  shard.writeBigUInt64LE(BigInt(SHARD_FOOTER_BYTES), 40);
  let at = SHARD_HEADER_BYTES;
  shard.fill(0xff, at, at + HASH_BYTES);
  at += ENTRY_BYTES;
  const casStart = at;
  for (const xorb of xorbs) {
    writeHash(xorb.hash, shard, at);
    shard.writeUInt32LE(xorb.chunks.length, at + 36);
    shard.writeUInt32LE(xorb.chunks.reduce((sum, chunk) => sum + chunk.bytes, 0), at + 40);
    at += ENTRY_BYTES;
    for (const chunk of xorb.chunks) {
      writeHash(chunk.hash, shard, at);
      shard.writeUInt32LE(chunk.offset, at + 32);
      shard.writeUInt32LE(chunk.bytes, at + 36);
      at += ENTRY_BYTES;
    }
  }
  shard.fill(0xff, at, at + HASH_BYTES);
  at += ENTRY_BYTES;
  const footer = at;
  shard.writeBigUInt64LE(1n, footer);
  shard.writeBigUInt64LE(BigInt(SHARD_HEADER_BYTES), footer + 8);
  shard.writeBigUInt64LE(BigInt(casStart), footer + 16);
  // The lookup tables (files, xorbs, chunks) are empty: their offsets point at the footer.
  for (const field of [24, 40, 56]) shard.writeBigUInt64LE(BigInt(footer), footer + field);
  writeHash(hmacKey, shard, footer + 72);
  shard.writeBigUInt64LE(BigInt(Math.floor(Date.now() / 1000)), footer + 104);
  shard.writeBigUInt64LE(BigInt(footer), footer + 192);
  return shard;
}
