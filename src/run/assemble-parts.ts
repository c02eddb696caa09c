import path from 'node:path';
import { assembleSplit, type AssembleCounts, type ShardSource } from '../write/assemble-split.js';
import type { ConvertEvent, SplitReport } from './convert-report.js';
import { ROW_GROUP_SIZE, SPLITS, type SplitName } from '../output/splits.js';
import { outputArrowSchemaValue } from '../output/output-schema.js';
import { partDir, type PartManifest } from './part-manifest.js';
import { planShards } from '../output/plan-shards.js';
import { ShardWriter } from '../write/shard-writer.js';

/** One split's pieces over the parts, in order: their files, and the split's rows and uncompressed bytes. */
interface SplitPieces {
  sources: ShardSource[];
  rows: number;
  nbytes: number;
  /** The shard count the parts' files were named for (`-of-N`): what was planned up front. */
  predicted: number;
}

/** The pieces of split `name` that the parts of `output` wrote. */
function splitPieces(output: string, manifests: readonly PartManifest[], name: SplitName): SplitPieces {
  const sources: ShardSource[] = [];
  let rows = 0;
  let nbytes = 0;
  let predicted = 0;
  for (const manifest of manifests) {
    const split = manifest.report.output.splits[name];
    if (split === undefined) continue;
    const dir = partDir(output, manifest.part);
    rows += split.rows;
    nbytes += split.numBytes;
    for (const file of split.files) {
      sources.push({ path: path.join(dir, file.file), rows: file.rows, crc: file.crc });
      predicted = Number(/-of-(\d+)\.parquet$/.exec(file.file)?.[1] ?? 0);
    }
  }
  return { sources, rows, nbytes, predicted };
}

/** What {@link assembleParts} made: each split's shards, and how many rows got there each way. */
export interface Assembled {
  splits: Partial<Record<SplitName, SplitReport>>;
  counts: AssembleCounts;
}

/**
 * Puts the pieces the parts of `output` wrote together into each split's shards, in directory `final`, cut as a
 * one-machine run cuts them: pieces that are whole shards taken by hard link, row groups that land where they belong
 * copied as they are, only the rows around each part's ends encoded again. Yields `write` progress in rows.
 */
export async function* assembleParts(params: {
  output: string;
  manifests: readonly PartManifest[];
  final: string;
  signal: AbortSignal | undefined;
}): AsyncGenerator<ConvertEvent, Assembled> {
  const { output, manifests, final, signal } = params;
  const first = manifests[0];
  if (first === undefined) throw new Error('no parts');
  const reportOptions = first.report.options;
  const counts: AssembleCounts = { linked: 0, copied: 0, rewritten: 0 };
  const splits: Partial<Record<SplitName, SplitReport>> = {};
  const total = manifests.reduce((sum, manifest) => sum + manifest.report.output.rows, 0);
  let rowsDone = 0;
  for (const name of SPLITS) {
    const { sources, rows, nbytes, predicted } = splitPieces(output, manifests, name);
    if (rows === 0) continue;
    const plan = planShards(rows, nbytes, reportOptions.maxShardSize);
    const writer = new ShardWriter({ split: name, dir: final, plan, rowGroupSize: ROW_GROUP_SIZE, arrowSchema: outputArrowSchemaValue() });
    const steps = assembleSplit(sources, writer, ROW_GROUP_SIZE);
    for (;;) {
      const step = await steps.next();
      if (step.done === true) {
        // As a one-machine run says: cut again when the rows or the shard count planned up front did not hold.
        const resharded = predicted !== plan.length || rows !== first.planned[name];
        splits[name] = { rows, numBytes: nbytes, files: step.value, resharded };
        break;
      }
      counts[step.value.how] += step.value.rows;
      rowsDone += step.value.rows;
      signal?.throwIfAborted();
      yield { type: 'progress', stage: 'write', done: rowsDone, total };
    }
  }
  return { splits, counts };
}
