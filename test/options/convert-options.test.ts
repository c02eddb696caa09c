import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConvertOptions } from '../../src/options/convert-options.js';
import { OptionError } from '../../src/errors.js';

const base = { input: ['in'], output: 'out' };

describe('resolveConvertOptions', () => {
  it('fills in the defaults', () => {
    const options = resolveConvertOptions(base);
    assert.equal(options.writerBatchSize, 128);
    assert.equal(options.testSize, 0.01);
    assert.equal(options.seed, 42);
    assert.equal(options.image.mode, 'keep');
    assert.equal(options.maxShardSize, 500_000_000);
    assert.equal(options.rowGroupSize, 100);
    assert.ok(options.numProc >= 1);
  });

  for (const [name, value, pattern] of [
    ['numProc', 0, /Expected positive integer for numProc but received 0/],
    ['writerBatchSize', 1.5, /writerBatchSize/],
    ['testSize', 2.5, /testSize/],
    ['seed', -1, /seed/],
    ['images', 'gif', /images/],
    ['quality', 101, /quality/],
    ['maxSide', 0, /maxSide/],
    ['maxShardSize', 'big', /maxShardSize/],
    ['maxRejectFraction', 2, /maxRejectFraction/],
    ['maxPixels', 178_956_971, /Pillow refuses to open an image.*maxPixels/],
  ] as const) {
    it(`refuses ${name} = ${String(value)} with a message naming it`, () => {
      assert.throws(
        () => resolveConvertOptions({ ...base, [name]: value }),
        (error: unknown) => error instanceof OptionError && pattern.test(error.message) && error.exitCode === 2,
      );
    });
  }

  it('reads openbmb/RLAIF-V-Dataset at main from the Hub when no input is given', () => {
    assert.deepEqual(resolveConvertOptions({ output: 'out' }).dataset, { repo: 'openbmb/RLAIF-V-Dataset', revision: 'main' });
    assert.deepEqual(resolveConvertOptions({ output: 'out', dataset: 'me/data', revision: 'v1' }).dataset, { repo: 'me/data', revision: 'v1' });
    assert.equal(resolveConvertOptions(base).dataset, null);
  });

  for (const [options, pattern] of [
    [{ ...base, dataset: 'me/data' }, /input .* or dataset .*, not both/],
    [{ ...base, revision: 'v1' }, /revision applies to dataset/],
    [{ output: 'out', dataset: 'not a repo id' }, /for dataset but received "not a repo id"/],
    [{ output: 'out', revision: '../main' }, /for revision/],
  ] as const) {
    it(`refuses ${JSON.stringify(options)}`, () => {
      assert.throws(() => resolveConvertOptions(options), (error: unknown) => error instanceof OptionError && pattern.test(error.message));
    });
  }
  it('names the first bad option in a fixed order, whatever else is wrong (a library caller sees the same error run after run)', () => {
    // In the order the options are checked: with every one of them bad, each is named in turn as those before it are mended.
    const bad: [string, Record<string, unknown>][] = [
      ['images', { images: 'bmp' }],
      ['quality', { quality: 0 }],
      ['testSize', { testSize: -1 }],
      ['seed', { seed: -1 }],
      ['maxSide', { maxSide: 0 }],
      ['maxRowGroupBytes', { maxRowGroupBytes: 'lots' }],
      ['columns', { columns: { picture: 'x' } }],
      ['numShards', { numShards: 0, shardIndex: 0 }],
      ['numProc', { numProc: 0 }],
      ['writerBatchSize', { writerBatchSize: 0 }],
      ['maxPixels', { maxPixels: 0 }],
      ['maxShardSize', { maxShardSize: 'big' }],
      ['maxRejectFraction', { maxRejectFraction: 2 }],
      ['onBadImage', { onBadImage: 'ignore' }],
      ['maxBytesInFlight', { maxBytesInFlight: 'much' }],
      ['streamRowGroupBytes', { streamRowGroupBytes: 'some' }],
      ['imageTimeout', { imageTimeout: 0 }],
      ['checkpointEvery', { checkpointEvery: 'often' }],
      ['cacheSize', { cacheSize: 'huge' }],
    ];
    const named: string[] = [];
    for (let first = 0; first < bad.length; first++) {
      const options = Object.assign({ input: ['in'], output: 'out' }, ...bad.slice(first).map(([, values]) => values)) as Parameters<typeof resolveConvertOptions>[0];
      try {
        resolveConvertOptions(options);
        named.push('(none)');
      } catch (error) {
        named.push(bad.map(([name]) => name).find((name) => (error as Error).message.includes(name)) ?? (error as Error).message);
      }
    }
    assert.deepEqual(named, bad.map(([name]) => name));
  });
});
