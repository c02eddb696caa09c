/**
 * Peak RSS of `rlaif-v push` uploading one large shard to a local Hub, with the streaming node:http fetch the tool
 * uses and, in the same run, with Node's built-in fetch (RLAIF_V_HUB_FETCH=builtin), which holds a request body whole.
 *
 *   npm run bench:push            # a 500 MB shard
 *   npm run bench:push -- 200     # another size, in MB
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalHub, TEST_TOKEN } from '../test/support/hub-server.js';
import { measureProcess } from '../src/bench/measure-process.js';

const CLI = fileURLToPath(new URL('../src/bin.js', import.meta.url));
const megabytes = Number(process.argv[2] ?? 500);

async function writeShard(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  const chunk = 1 << 20;
  for (let written = 0; written < bytes; written += chunk) {
    if (!out.write(randomBytes(Math.min(chunk, bytes - written)))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

const work = await mkdtemp(path.join(tmpdir(), 'rlaif-v-bench-push-'));
const hub = await LocalHub.start();
try {
  const dir = path.join(work, 'out');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await writeShard(path.join(dir, 'data', 'train-00000-of-00001.parquet'), megabytes * 1e6);
  await writeFile(path.join(dir, 'README.md'), '---\nlicense: cc-by-nc-4.0\n---\n# bench\n');
  const rows: string[] = [];
  for (const [label, fetchKind] of [['node:http fetch (default)', 'http'], ['built-in fetch', 'builtin']] as const) {
    const run = await measureProcess(process.execPath, [CLI, 'push', dir, '--repo-id', `bench/${fetchKind}`, '--quiet'], {
      HF_ENDPOINT: hub.url,
      HF_TOKEN: TEST_TOKEN,
      HF_HOME: path.join(work, 'hf-home'),
      RLAIF_V_HUB_FETCH: fetchKind,
      // Set, so bin.js runs the CLI in this process rather than relaunching it: the measured process is the push.
      MALLOC_ARENA_MAX: '2',
    });
    if (run.code !== 0) throw new Error(`push with ${label} failed: ${run.stderr}`);
    rows.push(`| ${label} | ${(run.peakRss / 1e6).toFixed(0)} MB | ${run.seconds.toFixed(1)} s |`);
    process.stderr.write(`${label}: peak RSS ${(run.peakRss / 1e6).toFixed(0)} MB in ${run.seconds.toFixed(1)} s\n`);
  }
  process.stdout.write(`Pushing one ${megabytes} MB shard to a local Hub (\`npm run bench:push -- ${megabytes}\`):\n\n| fetch | peak RSS | time |\n| --- | --- | --- |\n${rows.join('\n')}\n`);
} finally {
  await hub.close();
  await rm(work, { recursive: true, force: true });
}
