import { stat } from 'node:fs/promises';
import path from 'node:path';
import { tableFromIPC, tableToIPC } from 'apache-arrow';
import { outputHuggingfaceMetadata } from './output-schema.js';
import { ParquetSink } from './parquet-sink.js';
import { planShards, shardName } from './plan-shards.js';
import type { SplitSpool } from './split-spool.js';

export interface WrittenShard {
  /** Path relative to the dataset directory, `data/train-00000-of-00001.parquet`. */
  file: string;
  rows: number;
  /** Size of the file on disk. */
  size: number;
}

export interface WriteSplitOptions {
  split: string;
  /** The dataset directory (files go under `data/`). */
  dir: string;
  maxShardSize: number;
  rowGroupSize: number;
}

/**
 * Writes a spooled split as parquet shards with the layout `push_to_hub` gives: contiguous shards sized by the split's
 * uncompressed bytes, `rowGroupSize` rows per row group, the `huggingface` features in the footer. Yields the number
 * of rows written as it goes and returns the shards.
 */
export async function* writeSplit(spool: SplitSpool, options: WriteSplitOptions): AsyncGenerator<number, WrittenShard[]> {
  const plan = planShards(spool.rows, spool.nbytes, options.maxShardSize);
  const shards: WrittenShard[] = [];
  const sinkOptions = {
    rowGroupSize: options.rowGroupSize,
    metadata: new Map([['huggingface', outputHuggingfaceMetadata]]),
  };
  let shard = 0;
  let sink: ParquetSink | null = null;
  let left = 0;

  const finish = async (): Promise<void> => {
    if (sink === null) return;
    const { rows } = await sink.close();
    const file = path.relative(options.dir, sink.path);
    shards.push({ file: file.split(path.sep).join('/'), rows, size: (await stat(sink.path)).size });
    sink = null;
  };

  try {
    for await (const frame of spool.frames()) {
      let table = tableFromIPC(frame.ipc);
      while (table.numRows > 0) {
        if (sink === null) {
          const name = shardName(options.split, shard, plan.length);
          sink = await ParquetSink.open(path.join(options.dir, 'data', name), sinkOptions);
          left = plan[shard] ?? 0;
        }
        const take = Math.min(left, table.numRows);
        // A frame that goes whole into one shard is written as it came; only shard boundaries cost a re-encode.
        const whole = take === frame.rows;
        await sink.write(whole ? frame.ipc : tableToIPC(table.slice(0, take), 'stream'));
        table = table.slice(take);
        left -= take;
        if (left === 0) {
          await finish();
          shard++;
        }
      }
      yield frame.rows;
    }
    await finish();
  } catch (error) {
    await (sink as ParquetSink | null)?.abort();
    throw error;
  }
  return shards;
}
