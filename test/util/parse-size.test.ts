import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSize } from '../../src/util/parse-size.js';

describe('parseSize', () => {
  it('reads decimal and binary units as datasets does', () => {
    assert.equal(parseSize('500MB', 'x'), 500_000_000);
    assert.equal(parseSize('1GiB', 'x'), 2 ** 30);
    assert.equal(parseSize('1.5 GiB', 'x'), 1.5 * 2 ** 30);
    assert.equal(parseSize('2048', 'x'), 2048);
    assert.equal(parseSize(4096, 'x'), 4096);
  });

  it('names the option in its error', () => {
    assert.throws(() => parseSize('lots', 'maxShardSize'), /maxShardSize/);
    assert.throws(() => parseSize(0, 'maxShardSize'), /maxShardSize/);
    assert.throws(() => parseSize('5XB', 'maxShardSize'), /maxShardSize/);
  });
});
