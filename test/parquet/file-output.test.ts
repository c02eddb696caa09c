import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { directWritesIn, FileOutput } from '../../src/parquet/file-output.js';
import { tempDir } from '../support/fixtures.js';

/** `length` bytes that differ from their neighbours, from `seed`. */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed;
  for (let at = 0; at < length; at++) out[at] = (state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 24;
  return out;
}

/** Writes of many sizes, some larger than the 8 MiB staging area, some within a block. */
const SIZES = [1, 4095, 4097, 70_000, 9 * 2 ** 20, 3, 4096 * 3, 2 ** 20 + 5, 0, 123_456];

describe('FileOutput', () => {
  it('writes the same file around the page cache as through it, whatever the sizes of the writes', async () => {
    const dir = await tempDir();
    const expected = Buffer.concat(SIZES.map((size, index) => bytes(size, index + 1)));
    for (const direct of [true, false]) {
      const file = path.join(dir, `out-${direct}`);
      const output = FileOutput.open(file, 'w', 0, { direct });
      assert.equal(output.direct, direct && directWritesIn(dir), 'direct where the filesystem allows it');
      let position = 0;
      for (const [index, size] of SIZES.entries()) {
        output.write(bytes(size, index + 1), position);
        position += size;
        if (index === 3) {
          // A checkpoint: every byte so far is in the file (the file may run on, padded, to the next block).
          output.sync();
          const partial = await readFile(file);
          assert.ok(partial.subarray(0, position).equals(expected.subarray(0, position)), 'synced bytes are in the file');
        }
      }
      output.finish(position);
      output.close();
      assert.equal((await stat(file)).size, expected.length);
      assert.ok((await readFile(file)).equals(expected), `direct: ${direct}`);
    }
  });

  it('takes up a file cut back to a length off the block grid, and goes on writing from there', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'out');
    const first = bytes(3 * 2 ** 20 + 777, 7);
    const output = FileOutput.open(file, 'w');
    output.write(first, 0);
    output.sync();
    output.close(); // killed here: the file holds the bytes, and perhaps padding after them
    const keep = 2 ** 20 + 4321;
    const again = FileOutput.open(file, 'r+', keep);
    const rest = bytes(5 * 2 ** 20 + 11, 8);
    again.write(rest, keep);
    again.finish(keep + rest.length);
    again.close();
    assert.ok((await readFile(file)).equals(Buffer.concat([first.subarray(0, keep), rest])));
  });

  it('goes on with ordinary writes, from the bytes not yet written, when the filesystem refuses a direct write', async (t) => {
    const dir = await tempDir();
    if (!directWritesIn(dir)) return t.skip('no O_DIRECT here');
    const file = path.join(dir, 'out');
    const output = FileOutput.open(file, 'w');
    const fs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
    const writeSync = fs.writeSync;
    // Every write to the file but through its ordinary descriptor is refused, as a filesystem with larger blocks would.
    fs.writeSync = ((fd: number, ...rest: unknown[]) => {
      if (fd !== output.fd) throw Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' });
      return (writeSync as (...args: unknown[]) => number)(fd, ...rest);
    }) as typeof fs.writeSync;
    syncBuiltinESMExports();
    try {
      const first = bytes(9 * 2 ** 20 + 3, 1); // more than the staging area: the refusal comes in the middle of it
      const second = bytes(70_000, 2);
      output.write(first, 0);
      assert.equal(output.direct, false);
      output.write(second, first.length);
      output.finish(first.length + second.length);
      output.close();
      output.close();
      assert.ok((await readFile(file)).equals(Buffer.concat([first, second])));
    } finally {
      fs.writeSync = writeSync;
      syncBuiltinESMExports();
    }
  });

  it('refuses a write that does not follow the last', async () => {
    const dir = await tempDir();
    const output = FileOutput.open(path.join(dir, 'out'), 'w');
    output.write(bytes(10, 1), 0);
    if (output.direct) assert.throws(() => output.write(bytes(10, 2), 100), /not at 10/);
    output.close();
  });

  it('writes through the page cache on filesystems not known to take O_DIRECT (tmpfs)', async (t) => {
    if (!existsSync('/dev/shm')) return t.skip('no /dev/shm here');
    assert.equal(directWritesIn('/dev/shm'), false);
  });
});
