import type { ConvertEvent, SplitReport } from './convert-report.js';
import { SPLITS, type SplitName } from '../output/splits.js';
import type { Run } from './run.js';
import { writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { settleSplit, type WrittenSplit } from '../write/split-writer.js';

/**
 * Closes every split's shards (cutting them again where their plan did not hold), telling rows rewritten. Each split
 * finished is added to the run's checkpoint (at the input's end, where the last was taken) before its files cut again
 * replace its old ones: a run killed at any step from here is taken up with the finished splits as they are, and
 * finishes only the rest. A split the run took up finished is only settled.
 */
export async function* finishSplits(run: Run): AsyncGenerator<ConvertEvent, Partial<Record<SplitName, SplitReport>>> {
  const { writers, signal } = run;
  const splits: Partial<Record<SplitName, SplitReport>> = {};
  let rewritten = 0;
  const toRewrite = writers.rows('train') + writers.rows('test');
  for (const name of SPLITS) {
    let result = run.finished[name];
    if (result === undefined) {
      const cutting = writers.cut(name);
      for (;;) {
        const step = await cutting.next();
        if (step.done === true) {
          result = step.value;
          break;
        }
        rewritten += step.value;
        signal?.throwIfAborted();
        yield { type: 'progress', stage: 'write', done: rewritten, total: toRewrite };
      }
      await recordFinished(run, name, result);
    }
    const settled = await settleSplit(run.staging, result);
    if (settled.rows > 0) splits[name] = { rows: settled.rows, numBytes: settled.nbytes, files: settled.files, resharded: settled.resharded };
  }
  return splits;
}

/** Adds a finished split to the run's last checkpoint, taken where the input ends, and writes it (see finishSplits). */
async function recordFinished(run: Run, name: SplitName, result: WrittenSplit): Promise<void> {
  const last = run.lastCheckpoint;
  if (last === null || last.row !== run.range.endRow) throw new Error(`the last checkpoint is at row ${last?.row ?? 'none'}, not at the end of the input (${run.range.endRow})`);
  run.finished[name] = result;
  const { [name]: _state, ...splits } = last.splits;
  const { [name]: _pending, ...pendingFrom } = last.pendingFrom;
  const checkpoint: Checkpoint = { ...last, splits, pendingFrom, finished: { ...run.finished } };
  await run.lock.verify();
  await writeCheckpoint(run.staging, checkpoint);
  run.lastCheckpoint = checkpoint;
}
