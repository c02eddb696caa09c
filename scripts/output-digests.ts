/**
 * The SHA-256 of every output file of a fixed set of runs, to hold a change that must not change behaviour (a move of
 * modules, a split of a function) to the same bytes: run it before and after, and compare the two JSON files.
 *
 * The runs: the bundled sample as `npm start` converts it; a generated RLAIF-V-shaped sample in keep mode and with
 * `--images jpeg`; the same run killed with SIGKILL after its first checkpoint and taken up; three parts and finalize;
 * and the list of files `npm pack` would ship. Every data file, the rejects and the card (without its load_dataset
 * line, which names the directory) are hashed; report.json is not (it holds timings).
 *
 * Usage: node dist/scripts/output-digests.js > before.json   (from the repository root, after npm run build)
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const CLI = path.resolve('dist/src/bin.js');

function cli(args: string[]): void {
  const result = spawnSync(process.execPath, [CLI, ...args, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`rlaif-v ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
}

/** Every file of an output but report.json and the marker, with its SHA-256 (the card without its load_dataset line). */
async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const relative = path.relative(dir, path.join(entry.parentPath, entry.name));
    if (relative === 'report.json' || relative === '.rlaif-v.json') continue;
    let bytes = await readFile(path.join(dir, relative));
    if (relative === 'README.md') bytes = Buffer.from(bytes.toString('utf8').replace(/^.*load_dataset.*$/gm, ''));
    out[relative] = createHash('sha256').update(bytes).digest('hex');
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** Converts with SIGKILL after the first checkpoint, then takes the run up. */
async function killedAndTakenUp(args: string[], output: string): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...args, '--quiet'], { stdio: 'ignore', detached: true });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let done = false;
  void exited.then(() => (done = true));
  while (!done && !existsSync(path.join(`${output}.partial`, 'checkpoint.json'))) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!done) process.kill(-(child.pid ?? 0), 'SIGKILL');
  await exited;
  if (done && existsSync(output)) throw new Error('the run finished before it could be killed: give it more rows');
  cli(args);
}

const dir = await mkdtemp(path.join(tmpdir(), 'rlaif-v-digests-'));
try {
  const result: Record<string, unknown> = {};
  cli(['convert', '--input', 'sample', '--output', path.join(dir, 'start')]);
  result['npm start'] = await digests(path.join(dir, 'start'));
  const source = path.join(dir, 'source');
  cli(['sample', '--rows', '600', '--files', '3', '--row-group-size', '100', '--profile', 'source', '--output', source]);
  const common = ['--input', source, '--num-proc', '2', '--test-size', '0.05', '--checkpoint-every', '8MB', '--max-shard-size', '30MB', '--no-cache'];
  cli(['convert', ...common, '--output', path.join(dir, 'keep')]);
  result.keep = await digests(path.join(dir, 'keep'));
  cli(['convert', ...common, '--images', 'jpeg', '--output', path.join(dir, 'jpeg')]);
  result['images jpeg'] = await digests(path.join(dir, 'jpeg'));
  await killedAndTakenUp(['convert', ...common, '--output', path.join(dir, 'killed')], path.join(dir, 'killed'));
  result['killed and taken up'] = await digests(path.join(dir, 'killed'));
  for (let index = 0; index < 3; index++) cli(['convert', ...common, '--output', path.join(dir, 'parts'), '--num-shards', '3', '--shard-index', String(index)]);
  cli(['finalize', path.join(dir, 'parts')]);
  result['three parts + finalize'] = await digests(path.join(dir, 'parts'));
  const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' });
  result['npm pack'] = (JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]?.files.map((file) => file.path).sort();
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
