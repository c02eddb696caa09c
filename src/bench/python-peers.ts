/**
 * The Python peers `rlaif-v bench --reference` measures on the same input: TRL's script with `datasets`
 * (bench/reference.py) and the plain pyarrow + Pillow script (bench/plain.py).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { BENCH_PYTHON } from '../util/paths.js';
import type { BenchResults, Log, PlainRun } from './bench-results.js';
import { measureProcess } from './measure-process.js';

const { reference: REFERENCE, plain: PLAIN } = BENCH_PYTHON;

/** The Python reference (TRL's script with `datasets`), with num_proc 1 and all the cores. */
export async function measureReference(python: string, input: string, work: string, cores: number, log: Log): Promise<NonNullable<BenchResults['reference']>> {
  const runs: NonNullable<BenchResults['reference']>['runs'] = [];
  let datasetsVersion = '';
  for (const numProc of [1, ...(cores > 1 ? [cores] : [])]) {
    const refOutput = path.join(work, 'reference-output');
    log(`Running the Python reference with num_proc ${numProc} (this is slow)...`);
    const run = await measureProcess(python, [REFERENCE, '--input', input, '--output', refOutput, '--num-proc', String(numProc), '--flatten-indices']);
    await rm(refOutput, { recursive: true, force: true });
    if (run.code !== 0) throw new Error(`the Python reference failed: ${run.stderr.slice(-2000)}`);
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as { datasets: string; rows: number };
    datasetsVersion = result.datasets;
    runs.push({ numProc, rowsPerSecond: result.rows / run.seconds, seconds: run.seconds, peakRssMB: run.peakRss / 1e6 });
    log(`  reference num_proc ${numProc}: ${(result.rows / run.seconds).toFixed(1)} rows/s, peak ${Math.round(run.peakRss / 1e6)} MB`);
  }
  return {
    datasetsVersion,
    runs,
    best: Math.max(...runs.map((run) => run.rowsPerSecond)),
    note: "unmodified, its push step ran out of this machine's 24 GB on 2,000 rows",
  };
}

/**
 * The plain pyarrow + Pillow peer (bench/plain.py), a process per core, in keep and JPEG quality 75 modes, and JPEG
 * shrunk to `maxSide` (Pillow's draft and thumbnail): each mode's median run.
 */
export async function measurePlain(python: string, input: string, work: string, cores: number, repeats: number, log: Log, maxSide: number): Promise<PlainRun[]> {
  const plain: PlainRun[] = [];
  const modes = [{ images: 'keep' }, { images: 'jpeg' }, { images: 'jpeg', maxSide }] as const;
  for (const mode of modes) {
    const runs: PlainRun[] = [];
    const shrink = 'maxSide' in mode ? ['--max-side', String(mode.maxSide)] : [];
    const name = 'maxSide' in mode ? `${mode.images} max-side ${mode.maxSide}` : mode.images;
    for (let repeat = 0; repeat < repeats; repeat++) {
      const plainOutput = path.join(work, 'plain-output');
      const run = await measureProcess(python, [PLAIN, '--input', input, '--output', plainOutput, '--num-proc', String(cores), '--images', mode.images, '--quality', '75', ...shrink]);
      await rm(plainOutput, { recursive: true, force: true });
      if (run.code !== 0) throw new Error(`bench/plain.py failed: ${run.stderr.slice(-2000)}`);
      const result = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as { rows: number; cpuSeconds: number };
      runs.push({ ...mode, numProc: cores, rowsPerSecond: result.rows / run.seconds, cpuMsPerRow: (result.cpuSeconds * 1000) / result.rows, peakRssMB: run.peakRss / 1e6 });
      log(`[plain ${name}] ${cores} processes, run ${repeat + 1}: ${(result.rows / run.seconds).toFixed(1)} rows/s`);
    }
    const median = [...runs].sort((a, b) => a.rowsPerSecond - b.rowsPerSecond)[runs.length >> 1];
    if (median !== undefined) plain.push(median);
  }
  return plain;
}
