/**
 * What resuming and splitting a conversion cost: `npm run bench:split -- [--rows 8000] [--files 4] [--parts 2,3]
 * [--repeats 2] [--num-proc 2]`.
 *
 * On an RLAIF-V-shaped input (generated once into bench/.cache/: `--files` files of one row group each, as the source
 * appears to be, 640-pixel images, a fifth of rows reusing an image), in child processes, one at a time:
 * - a whole run, `--repeats` times (the median is the reference);
 * - resume: a run killed with SIGKILL once its checkpoint holds 80% of the rows, then the same command again: the
 *   re-run's time against a whole run's (the target is at most 0.6);
 * - parts: for each count K in `--parts`, the K parts one after another (as K machines would run them at once), each
 *   part's time, and finalize's: the overhead of a part is its time less a whole run's share (1/K of it).
 * Prints a Markdown table and writes it to bench/results/split-<timestamp>.md.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ConvertReport } from '../src/run/convert-report.js';
import { measureNode } from '../src/bench/measure-process.js';
import { CLI, ROOT, shapedInput } from './shaped-input.js';


const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '8000' },
    files: { type: 'string', default: '4' },
    parts: { type: 'string', default: '2,3' },
    repeats: { type: 'string', default: '2' },
    'num-proc': { type: 'string', default: String(availableParallelism()) },
  },
});
const rows = Number(values.rows);
const files = Number(values.files);
const repeats = Number(values.repeats);
const partCounts = (values.parts ?? '').split(',').map(Number);
const numProc = values['num-proc'] ?? '2';

const input = await shapedInput(rows, files);
const work = path.join(ROOT, 'bench', '.cache', 'split-work');
await rm(work, { recursive: true, force: true });
await mkdir(work, { recursive: true });
const common = ['--input', input, '--num-proc', numProc, '--quiet', '--no-cache'];

const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;
const median = (list: number[]): number => {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return Number.isInteger(middle) ? ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2 : (sorted[Math.floor(middle)] ?? NaN);
};

async function timed(args: string[]): Promise<{ seconds: number; report: ConvertReport }> {
  const run = await measureNode([CLI, ...args, '--json']);
  if (run.code !== 0) throw new Error(`${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return { seconds: run.seconds, report: JSON.parse(run.stdout) as ConvertReport };
}

// A whole run, the reference.
const whole: number[] = [];
let inputRows = 0;
for (let repeat = 0; repeat < repeats; repeat++) {
  const output = path.join(work, 'whole');
  const run = await timed(['convert', ...common, '--output', output]);
  whole.push(run.seconds);
  inputRows = run.report.input.rows;
  await rm(output, { recursive: true, force: true });
}
const wholeSeconds = median(whole);
process.stderr.write(`whole run: ${whole.map((s) => round(s)).join(', ')} s\n`);

/** Starts a run and kills it (SIGKILL, its whole process group) once its checkpoint holds `fraction` of the rows. */
async function killAt(args: string[], staging: string, fraction: number): Promise<number> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore', detached: true });
  let exited = false;
  const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  void done.then(() => (exited = true));
  let row = 0;
  while (!exited) {
    const checkpoint = await readFile(path.join(staging, 'checkpoint.json'), 'utf8').catch(() => null);
    row = checkpoint === null ? row : ((JSON.parse(checkpoint) as { row?: number }).row ?? row);
    if (row >= fraction * inputRows) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (exited) throw new Error('the run finished before it could be killed');
  process.kill(-(child.pid ?? 0), 'SIGKILL');
  await done;
  return row;
}

const resumes: { checkpointed: number; seconds: number; reused: number }[] = [];
for (let repeat = 0; repeat < repeats; repeat++) {
  const output = path.join(work, 'resumed');
  const args = ['convert', ...common, '--output', output];
  const checkpointed = await killAt(args, `${output}.partial`, 0.8);
  const run = await timed(args);
  const reused = run.report.resume?.resumed === true ? run.report.resume.rowsReused : 0;
  resumes.push({ checkpointed, seconds: run.seconds, reused });
  await rm(output, { recursive: true, force: true });
  process.stderr.write(`resume: killed with ${checkpointed} rows checkpointed, re-run ${round(run.seconds)} s (${reused} rows reused)\n`);
}

const partRuns: { count: number; parts: number[]; finalize: number; linked: number; copied: number; rewritten: number }[] = [];
for (const count of partCounts) {
  const output = path.join(work, `parts-${count}`);
  const parts: number[] = [];
  for (let index = 0; index < count; index++) {
    parts.push((await timed(['convert', ...common, '--output', output, '--num-shards', String(count), '--shard-index', String(index)])).seconds);
  }
  const finalize = await timed(['finalize', output]);
  const rowsDone = finalize.report.finalize?.rows ?? { linked: 0, copied: 0, rewritten: 0 };
  partRuns.push({ count, parts, finalize: finalize.seconds, ...rowsDone });
  await rm(output, { recursive: true, force: true });
  process.stderr.write(`${count} parts: ${parts.map((s) => round(s)).join(', ')} s; finalize ${round(finalize.seconds)} s\n`);
}

const fileCount = (await readdir(input)).filter((name) => name.endsWith('.parquet')).length;
const lines = [
  `# Resuming and splitting a conversion (${new Date().toISOString()})`,
  '',
  `Machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
  `Input: ${inputRows} rows in ${fileCount} file(s) of one row group (\`${path.relative(ROOT, input)}\`); \`--num-proc ${numProc}\`.`,
  `Command: \`npm run bench:split -- --rows ${rows} --files ${files} --parts ${partCounts.join(',')} --repeats ${repeats} --num-proc ${numProc}\``,
  '',
  '| run | seconds | against a whole run |',
  '| --- | --- | --- |',
  `| whole run (median of ${whole.length}) | ${round(wholeSeconds)} | 1 |`,
  ...resumes.map(
    (run) =>
      `| re-run after kill -9 with ${run.checkpointed} of ${inputRows} rows (${Math.round((100 * run.checkpointed) / inputRows)}%) checkpointed | ${round(run.seconds)} | **${round(run.seconds / wholeSeconds)}** |`,
  ),
  ...partRuns.flatMap((run) => {
    const overhead = run.parts.map((seconds) => seconds - wholeSeconds / run.count);
    return [
      `| ${run.count} parts, each (as on ${run.count} machines at once) | ${run.parts.map((s) => round(s)).join(', ')} | slowest ${round(Math.max(...run.parts) / wholeSeconds)}; overhead a part ${round(median(overhead))} s |`,
      `| ${run.count} parts, finalize (rows linked ${run.linked}, copied ${run.copied}, encoded again ${run.rewritten}) | ${round(run.finalize)} | ${round(run.finalize / wholeSeconds)} |`,
    ];
  }),
  '',
];
const text = lines.join('\n');
process.stdout.write(`${text}\n`);
const results = path.join(ROOT, 'bench', 'results');
await mkdir(results, { recursive: true });
const file = path.join(results, `split-${new Date().toISOString().replace(/[:.]/g, '-')}.md`);
await writeFile(file, `${text}\n`);
process.stderr.write(`Wrote ${file}\n`);
await rm(work, { recursive: true, force: true });
