/** The test Hub's reading of Xet's formats (test/support/xet-format.ts), on bytes made by hand from the specification. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dedupShard, lz4Frame, parseShard, readHash, writeHash, xorbChunks } from '../support/xet-format.js';

/** A chunk as a xorb holds it: version 0, stored length, compression scheme, length uncompressed. */
function chunk(scheme: number, stored: Buffer, size: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUIntLE(stored.length, 1, 3);
  header[4] = scheme;
  header.writeUIntLE(size, 5, 3);
  return Buffer.concat([header, stored]);
}

/** An LZ4 frame of the given blocks (a block with `raw` set is stored uncompressed), no checksums. */
function frame(blocks: { data: Buffer; raw?: boolean }[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82])];
  for (const block of blocks) {
    const size = Buffer.alloc(4);
    size.writeUInt32LE((block.data.length | (block.raw === true ? 0x80000000 : 0)) >>> 0);
    parts.push(size, block.data);
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

// "abc", then a match 3 back of 9 bytes, then the literal "z": "abcabcabcabcz".
const LZ4_BLOCK = Buffer.from([0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x7a]);

describe('the Xet formats of the test Hub', () => {
  it('reads LZ4 frames: literals, overlapping matches, stored blocks', () => {
    assert.equal(lz4Frame(frame([{ data: LZ4_BLOCK }]), 13).toString(), 'abcabcabcabcz');
    assert.equal(lz4Frame(frame([{ data: LZ4_BLOCK }, { data: Buffer.from('!!'), raw: true }]), 15).toString(), 'abcabcabcabcz!!');
    assert.throws(() => lz4Frame(frame([{ data: LZ4_BLOCK }]), 14), /holds 13 bytes/);
    assert.throws(() => lz4Frame(Buffer.from('not a frame at all'), 3), /not an LZ4 frame/);
  });

  it('reads a xorb of raw, LZ4 and byte-grouped chunks', () => {
    const plain = Buffer.from('0123456789');
    // Byte grouping by 4: positions 0,4,8 then 1,5,9 then 2,6 then 3,7.
    const grouped = Buffer.from('0481592637');
    const xorb = Buffer.concat([chunk(0, Buffer.from('raw!'), 4), chunk(1, frame([{ data: LZ4_BLOCK }]), 13), chunk(2, frame([{ data: grouped, raw: true }]), 10)]);
    assert.deepEqual(xorbChunks(xorb).map((part) => part.toString()), ['raw!', 'abcabcabcabcz', plain.toString()]);
    assert.throws(() => xorbChunks(xorb.subarray(0, xorb.length - 1)), /cut short/);
    assert.throws(() => xorbChunks(chunk(7, Buffer.from('x'), 1)), /scheme 7/);
  });

  it('writes hashes as the client does (little-endian 8-byte groups) and reads them back', () => {
    const hex = '0011223344556677' + '8899aabbccddeeff' + '0102030405060708' + 'f0e0d0c0b0a09080';
    const buffer = Buffer.alloc(32);
    writeHash(hex, buffer, 0);
    assert.equal(buffer.subarray(0, 8).toString('hex'), '7766554433221100');
    assert.equal(readHash(buffer, 0), hex);
  });

  it('makes a dedup answer that reads back as the xorbs it lists, and no files', () => {
    const xorbs = [
      { hash: 'a'.repeat(64), chunks: [{ hash: 'b'.repeat(64), offset: 0, bytes: 100 }, { hash: 'c'.repeat(64), offset: 100, bytes: 50 }] },
      { hash: 'd'.repeat(64), chunks: [{ hash: 'e'.repeat(64), offset: 0, bytes: 7 }] },
    ];
    const shard = dedupShard(xorbs, '1'.repeat(64));
    assert.deepEqual(parseShard(shard), { files: [], xorbs });
    assert.throws(() => parseShard(Buffer.concat([Buffer.alloc(32), shard.subarray(32)])), /not a version 2 shard/);
  });
});
