import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planShards, shardName } from '../../src/output/plan-shards.js';

describe('planShards', () => {
  it('cuts floor(bytes / max) + 1 shards as push_to_hub does', () => {
    assert.equal(planShards(82_300, 6_900_000_000, 500_000_000).length, 14);
    assert.equal(planShards(832, 70_000_000, 500_000_000).length, 1);
    assert.equal(planShards(100, 1_000_000_000, 500_000_000).length, 3);
  });

  it('gives the first shards one row more when rows do not divide evenly, like Dataset.shard(contiguous=True)', () => {
    assert.deepEqual(planShards(10, 2_500, 1_000), [4, 3, 3]);
    assert.deepEqual(planShards(9, 2_500, 1_000), [3, 3, 3]);
  });

  it('never plans an empty shard', () => {
    assert.deepEqual(planShards(2, 10_000, 1_000), [1, 1]);
  });
});

describe('shardName', () => {
  it('pads index and count to five digits', () => {
    assert.equal(shardName('train', 3, 14), 'train-00003-of-00014.parquet');
  });
});
