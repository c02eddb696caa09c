/**
 * How `datasets.push_to_hub` cuts a split: `floor(nbytes / maxShardSize) + 1` contiguous shards, row counts as even as
 * possible with the first ones one row longer (`Dataset.shard(n, i, contiguous=True)`).
 *
 * @returns the number of rows of each shard, in order.
 */
export function planShards(rows: number, nbytes: number, maxShardSize: number): number[] {
  const count = Math.max(1, Math.min(rows, Math.floor(nbytes / maxShardSize) + 1));
  const base = Math.floor(rows / count);
  const extra = rows % count;
  return Array.from({ length: count }, (_, index) => base + (index < extra ? 1 : 0));
}

/** `train-00003-of-00014.parquet` */
export function shardName(split: string, index: number, count: number): string {
  const pad = (value: number): string => String(value).padStart(5, '0');
  return `${split}-${pad(index)}-of-${pad(count)}.parquet`;
}
