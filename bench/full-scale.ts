/**
 * The tool at the real dataset's scale: `npm run bench:full -- [--num-proc 2] [--repeats 1] [--rows 83132 --files 14]
 * [--pages pyarrow|small] [--no-plain]`.
 *
 * Builds (once, into bench/.cache/) a stand-in of openbmb/RLAIF-V-Dataset at full size: 83,132 rows, ~12.9 GB, 14
 * files of one row group each, every image distinct, pages as pyarrow lays them out (see source-like-input). Then
 * converts it as a user would by default (keep mode, the cache on and empty), and runs the plain pyarrow + Pillow script
 * (bench/plain.py: one process a worker, every image fully decoded) on the same files, in turn. Records wall time, user
 * and system CPU of each whole process tree, its peak memory (the largest process, from the kernel) and the tree's
 * memory over time, into bench/results/full-<time>.md and .json.
 */
import { cpus, totalmem } from 'node:os';
import { mkdir, rm, stat, writeFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureTree, type MeasuredTree } from '../src/bench/measure-process.js';
import { pythonWithDatasets } from '../src/bench/python-env.js';
import { CLI, ROOT } from './shaped-input.js';
import { sourceLikeInput } from './source-like-input.js';

const { values } = parseArgs({
  options: {
    'num-proc': { type: 'string', default: '2' },
    repeats: { type: 'string', default: '1' },
    rows: { type: 'string', default: '83132' },
    files: { type: 'string', default: '14' },
    pages: { type: 'string', default: 'pyarrow' },
    'no-plain': { type: 'boolean', default: false },
  },
});
const numProc = Number(values['num-proc']);
const repeats = Number(values.repeats);
const rows = Number(values.rows);
const files = Number(values.files);
const pages = values.pages === 'small' ? 'small' : 'pyarrow';
const withPlain = values['no-plain'] !== true;

interface Run {
  tool: 'rlaif-v' | 'plain';
  repeat: number;
  exitCode: number | null;
  seconds: number;
  rowsPerSecond: number;
  user: number | null;
  system: number | null;
  /** Peak resident memory of the largest process (the kernel's high-water mark). */
  peakRss: number;
  /** Peak of the process tree's summed resident memory, sampled each second. */
  peakTreeRss: number;
  rss: [number, number][];
  /** rlaif-v's report.json, less what is long. */
  report?: { memory?: unknown; cpu?: unknown; images?: unknown; seconds?: unknown };
}

const started = performance.now();
const cache = path.join(ROOT, 'bench', '.cache');
const input = await sourceLikeInput({ rows, files, pages });
let inputBytes = 0;
for (const name of await readdir(input)) if (name.endsWith('.parquet')) inputBytes += (await stat(path.join(input, name))).size;
const python = withPlain ? await pythonWithDatasets() : { skip: '--no-plain' };
if ('skip' in python) process.stderr.write(`The plain script is not run: ${python.skip}\n`);

function toRun(tool: Run['tool'], repeat: number, measured: MeasuredTree): Run {
  return {
    tool,
    repeat,
    exitCode: measured.code,
    seconds: Math.round(measured.seconds * 100) / 100,
    rowsPerSecond: Math.round(rows / measured.seconds),
    user: measured.user,
    system: measured.system,
    peakRss: measured.peakRss,
    peakTreeRss: measured.peakTreeRss,
    rss: measured.rss,
  };
}

async function runTool(repeat: number): Promise<Run> {
  const output = path.join(cache, 'full-out');
  const imageCache = path.join(cache, 'full-image-cache');
  await rm(output, { recursive: true, force: true });
  await rm(imageCache, { recursive: true, force: true });
  const args = [CLI, 'convert', '--input', input, '--output', output, '--num-proc', String(numProc), '--quiet', '--json'];
  // The cache on and empty, as a user's first run; MALLOC_ARENA_MAX as the executable sets it (no relaunch).
  const measured = await measureTree(process.execPath, args, { RLAIF_V_CACHE: imageCache, MALLOC_ARENA_MAX: '2' });
  await rm(output, { recursive: true, force: true });
  await rm(imageCache, { recursive: true, force: true });
  if (measured.code !== 0) process.stderr.write(measured.stderr.slice(-4000));
  const run = toRun('rlaif-v', repeat, measured);
  if (measured.code === 0) {
    const report = JSON.parse(measured.stdout) as NonNullable<Run['report']>;
    run.report = { memory: report.memory, cpu: report.cpu, images: report.images, seconds: report.seconds };
  }
  return run;
}

async function runPlain(repeat: number, pythonPath: string): Promise<Run> {
  const output = path.join(cache, 'full-plain-out');
  await rm(output, { recursive: true, force: true });
  const measured = await measureTree(pythonPath, [path.join(ROOT, 'bench', 'plain.py'), '--input', input, '--output', output, '--num-proc', String(numProc), '--images', 'keep']);
  await rm(output, { recursive: true, force: true });
  if (measured.code !== 0) process.stderr.write(measured.stderr.slice(-4000));
  return toRun('plain', repeat, measured);
}

const runs: Run[] = [];
for (let repeat = 0; repeat < repeats; repeat++) {
  for (const tool of ['rlaif-v', 'plain'] as const) {
    if (tool === 'plain' && 'skip' in python) continue;
    process.stderr.write(`[${tool}] run ${repeat + 1} of ${repeats}...\n`);
    const run = tool === 'rlaif-v' ? await runTool(repeat) : await runPlain(repeat, 'python' in python ? python.python : '');
    runs.push(run);
    const cpu = run.user === null || run.system === null ? '' : `, CPU ${run.user.toFixed(0)} + ${run.system.toFixed(0)} s`;
    process.stderr.write(`[${tool}] ${run.seconds.toFixed(1)} s (${run.rowsPerSecond} rows/s)${cpu}, peak ${(run.peakRss / 1e9).toFixed(2)} GB, exit ${run.exitCode}\n`);
  }
}

const gb = (bytes: number): string => (bytes / 1e9).toFixed(2);
const minutes = (seconds: number): string => `${Math.floor(seconds / 60)} m ${Math.round(seconds % 60)} s`;
const sysShare = (run: Run): string => (run.user === null || run.system === null ? '–' : `${((100 * run.system) / (run.user + run.system)).toFixed(1)}%`);
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${gb(totalmem())} GB, Node ${process.version}`;
const lines = [
  `# Full scale: ${rows.toLocaleString('en-US')} rows, ${gb(inputBytes)} GB in ${files} files of one row group (${pages} pages)`,
  '',
  `${new Date().toISOString()} · ${machine} · \`npm run bench:full -- --num-proc ${numProc} --repeats ${repeats}${pages === 'pyarrow' ? '' : ' --pages small'}\``,
  `(input ${input}: every image distinct; keep mode, the cache on and empty; \`--num-proc ${numProc}\` and ${numProc} processes for the plain script). The whole bench took ${minutes((performance.now() - started) / 1000)}.`,
  '',
  '| run | wall | rows/s | user CPU s | system CPU s | system share | peak memory (largest process) | peak memory (process tree, sampled) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...runs.map(
    (run) =>
      `| ${run.tool === 'rlaif-v' ? 'rlaif-v convert' : 'plain pyarrow + Pillow script'} #${run.repeat + 1}${run.exitCode === 0 ? '' : ` (exit ${run.exitCode})`} | ${minutes(run.seconds)} | ${run.rowsPerSecond} | ${run.user?.toFixed(1) ?? '–'} | ${run.system?.toFixed(1) ?? '–'} | ${sysShare(run)} | ${gb(run.peakRss)} GB | ${gb(run.peakTreeRss)} GB |`,
  ),
  '',
];
const ours = runs.filter((run) => run.tool === 'rlaif-v');
const plain = runs.filter((run) => run.tool === 'plain');
for (const run of ours) {
  const memory = run.report?.memory as { maxBytesInFlight: number; peakBytesInFlight: number } | undefined;
  if (memory !== undefined) lines.push(`rlaif-v #${run.repeat + 1}: image data in flight peaked at ${gb(memory.peakBytesInFlight)} GB of its ${gb(memory.maxBytesInFlight)} GB budget.`);
}
for (const [index, run] of ours.entries()) {
  const peer = plain[index];
  if (peer !== undefined) lines.push(`Wall time, plain ÷ rlaif-v (pair ${index + 1}): **${(peer.seconds / run.seconds).toFixed(2)}**.`);
}
lines.push('', '## Memory over time (process tree, GB, every 10 s)', '');
for (const run of runs) {
  const points = run.rss.filter((_, index) => index % 10 === 0).map(([, bytes]) => (bytes / 1e9).toFixed(1));
  lines.push(`- ${run.tool} #${run.repeat + 1}: ${points.join(' ')}`);
}
const results = path.join(ROOT, 'bench', 'results');
await mkdir(results, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
await writeFile(path.join(results, `full-${stamp}.md`), `${lines.join('\n')}\n`);
await writeFile(path.join(results, `full-${stamp}.json`), `${JSON.stringify({ machine, rows, files, pages, inputBytes, numProc, runs }, null, 2)}\n`);
process.stdout.write(`${lines.join('\n')}\n\nWritten to bench/results/full-${stamp}.md\n`);
