import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toConversational } from '../../src/output/to-conversational.js';
import { encodeSplit, transferables } from '../../src/write/encode-split.js';

describe('transferables', () => {
  it("moves a page whose images a split's rows mostly use, and copies out a row of the other split that uses little of it", () => {
    const page = new Uint8Array(1000);
    const train = encodeSplit([0, 1, 2].map((i) => toConversational('q', 'c', 'r', { bytes: page.subarray(i * 300, i * 300 + 300), path: null })));
    const test = encodeSplit([toConversational('q', 'c', 'r', { bytes: page.subarray(900, 1000), path: null })]);
    const moved = transferables([train, test], (buffer) => buffer === page.buffer);
    assert.deepEqual(moved.filter((buffer) => buffer === page.buffer).length, 1, 'the page goes with the train rows');
    const testImage = test?.data[0]?.images[0]?.bytes;
    assert.ok(testImage !== undefined && testImage.buffer !== page.buffer && testImage.buffer.byteLength === 100, 'the test row holds only its image');
    assert.ok(moved.includes(testImage.buffer as ArrayBuffer));
    assert.ok(train?.data.every((row) => row.images[0]?.bytes.buffer === page.buffer));
  });

  it('copies an image whose buffer is not the task\'s to give', () => {
    const cached = new Uint8Array(50);
    const part = encodeSplit([toConversational('q', 'c', 'r', { bytes: cached, path: null })]);
    const moved = transferables([part], () => false);
    assert.ok(!moved.includes(cached.buffer as ArrayBuffer));
    assert.notEqual(part?.data[0]?.images[0]?.bytes.buffer, cached.buffer);
  });
});
