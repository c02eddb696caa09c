/**
 * What a re-run costs with the cache of image work: `npm run bench:rerun -- [--rows 8000] [--files 4] [--repeats 2]
 * [--num-proc 2]`.
 *
 * On the RLAIF-V-shaped input of bench:split (generated once into bench/.cache/), in child processes, one at a time:
 * for `--images keep` and `--images jpeg --quality 75`, a first run with an empty cache, then the same command again
 * (the cache then holds every image), then again with another seed and test size; the re-runs' times against the first
 * run's (the target is at most 0.5), and a run with --no-cache for reference. Prints a Markdown table and writes it to
 * bench/results/rerun-<timestamp>.md.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ConvertReport } from '../src/run/convert-report.js';
import { measureNode } from '../src/bench/measure-process.js';
import { CLI, ROOT, shapedInput } from './shaped-input.js';


const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '8000' },
    files: { type: 'string', default: '4' },
    repeats: { type: 'string', default: '2' },
    'num-proc': { type: 'string', default: String(availableParallelism()) },
  },
});
const rows = Number(values.rows);
const files = Number(values.files);
const repeats = Number(values.repeats);
const numProc = values['num-proc'] ?? '2';

const input = await shapedInput(rows, files);
const work = await mkdtemp(path.join(tmpdir(), 'rlaif-v-rerun-'));
const round = (value: number): number => Math.round(value * 100) / 100;

async function timed(args: string[], cache: string): Promise<{ seconds: number; report: ConvertReport }> {
  const output = path.join(work, 'out');
  const run = await measureNode([CLI, 'convert', '--input', input, '--output', output, '--num-proc', numProc, '--quiet', '--json', ...args], { RLAIF_V_CACHE: cache });
  await rm(output, { recursive: true, force: true });
  if (run.code !== 0) throw new Error(`convert ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return { seconds: run.seconds, report: JSON.parse(run.stdout) as ConvertReport };
}

const lines: string[] = [];
for (const [mode, args] of [
  ['keep', []],
  ['jpeg q75', ['--images', 'jpeg', '--quality', '75']],
] as const) {
  for (let repeat = 0; repeat < repeats; repeat++) {
    const cache = path.join(work, `cache-${repeat}`);
    await rm(cache, { recursive: true, force: true });
    const off = await timed([...args, '--no-cache'], cache);
    const first = await timed([...args], cache);
    const again = await timed([...args], cache);
    const reseeded = await timed([...args, '--seed', '7', '--test-size', '0.05'], cache);
    process.stderr.write(
      `${mode}: --no-cache ${round(off.seconds)} s, first ${round(first.seconds)} s (${first.report.images.validated} decoded), ` +
        `again ${round(again.seconds)} s (${again.report.images.validated} decoded), other seed ${round(reseeded.seconds)} s\n`,
    );
    lines.push(
      `| ${mode} | ${round(off.seconds)} | ${round(first.seconds)} (${first.report.images.validated} decoded) | ${round(again.seconds)} (${again.report.images.validated} decoded) | **${round(again.seconds / first.seconds)}** | ${round(reseeded.seconds)} | **${round(reseeded.seconds / first.seconds)}** |`,
    );
    await rm(cache, { recursive: true, force: true });
  }
}
await rm(work, { recursive: true, force: true });

const text = [
  `# Re-runs with the cache of image work (${new Date().toISOString()})`,
  '',
  `Machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
  `Input: \`${path.relative(ROOT, input)}\` (${rows} rows, ${files} files of one row group); \`--num-proc ${numProc}\`.`,
  `Command: \`npm run bench:rerun -- --rows ${rows} --files ${files} --repeats ${repeats} --num-proc ${numProc}\``,
  '',
  '| images | --no-cache, s | first run, empty cache, s | same command again, s | again ÷ first | --seed 7 --test-size 0.05, s | ÷ first |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...lines,
  '',
].join('\n');
process.stdout.write(`${text}\n`);
const results = path.join(ROOT, 'bench', 'results');
await mkdir(results, { recursive: true });
const file = path.join(results, `rerun-${new Date().toISOString().replace(/[:.]/g, '-')}.md`);
await writeFile(file, `${text}\n`);
process.stderr.write(`Wrote ${file}\n`);
