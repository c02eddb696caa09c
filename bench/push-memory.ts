/**
 * Peak RSS and CPU of `rlaif-v push` uploading one large shard to a local Hub: through Xet (the Hub offers it, as
 * huggingface.co does), then the same shard with 1 MB overwritten in its middle pushed again through Xet (what a
 * re-push sends), then through LFS (a Hub without Xet) with the streaming node:http fetch the tool uses and with
 * Node's built-in fetch (RLAIF_V_HUB_FETCH=builtin), which holds a request body whole. The CPU the Xet push costs
 * over the LFS push (both hash the file's sha256 once) is the chunking's: chunk boundaries, BLAKE3 chunk hashes,
 * LZ4 tried on every chunk.
 *
 *   npm run bench:push            # a 500 MB shard
 *   npm run bench:push -- 200     # another size, in MB
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PushReport } from '../src/hub/push-dataset.js';
import { LocalHub, TEST_TOKEN } from '../test/support/hub-server.js';
import { measureTree } from '../src/bench/measure-process.js';

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
const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

async function measuredPush(label: string, dir: string, repo: string, fetchKind: 'http' | 'builtin'): Promise<string> {
  const run = await measureTree(process.execPath, [CLI, 'push', dir, '--repo-id', repo, '--quiet', '--json'], {
    HF_ENDPOINT: hub.url,
    HF_TOKEN: TEST_TOKEN,
    HF_HOME: path.join(work, 'hf-home'),
    RLAIF_V_HUB_FETCH: fetchKind,
    // Set, so bin.js runs the CLI in this process rather than relaunching it: the measured process is the push.
    MALLOC_ARENA_MAX: '2',
  });
  if (run.code !== 0) throw new Error(`push with ${label} failed: ${run.stderr}`);
  const report = JSON.parse(run.stdout) as PushReport;
  const cpu = (run.user ?? 0) + (run.system ?? 0);
  process.stderr.write(`${label}: peak RSS ${mb(run.peakRss)} MB, ${run.seconds.toFixed(1)} s, CPU ${cpu.toFixed(1)} s, sent ${mb(report.bytesSent)} MB\n`);
  return `| ${label} | ${(run.peakRss / 1e6).toFixed(0)} MB | ${run.seconds.toFixed(1)} s | ${cpu.toFixed(1)} s | ${mb(report.bytesSent)} MB | ${mb(report.bytesDeduplicated)} MB |`;
}

try {
  const dir = path.join(work, 'out');
  const shard = path.join(dir, 'data', 'train-00000-of-00001.parquet');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await writeShard(shard, megabytes * 1e6);
  await writeFile(path.join(dir, 'README.md'), '---\nlicense: cc-by-nc-4.0\n---\n# bench\n');
  const rows: string[] = [];
  hub.xet = true;
  rows.push(await measuredPush('Xet, node:http fetch (default)', dir, 'bench/xet', 'http'));
  const handle = await open(shard, 'r+');
  await handle.write(randomBytes(1e6), 0, 1e6, Math.floor((megabytes * 1e6) / 2));
  await handle.close();
  rows.push(await measuredPush('Xet again, 1 MB overwritten', dir, 'bench/xet', 'http'));
  hub.xet = false;
  rows.push(await measuredPush('LFS, node:http fetch', dir, 'bench/lfs-http', 'http'));
  rows.push(await measuredPush('LFS, built-in fetch', dir, 'bench/lfs-builtin', 'builtin'));
  process.stdout.write(
    `Pushing one ${megabytes} MB shard to a local Hub (\`npm run bench:push -- ${megabytes}\`):\n\n` +
      `| push | peak RSS | time | CPU | sent | deduplicated |\n| --- | --- | --- | --- | --- | --- |\n${rows.join('\n')}\n`,
  );
} finally {
  await hub.close();
  await rm(work, { recursive: true, force: true });
}
