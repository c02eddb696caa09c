import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { CLI, sampleDir, tempDir } from '../support/fixtures.js';

/** How the CLI process ended. */
function ended(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

describe('the rlaif-v process', () => {
  let input: string;
  before(async () => {
    input = await sampleDir(300);
  });

  it('finishes the conversion when the reader of its output goes away (| head -1)', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'out');
    for (const args of [[], ['--json']]) {
      const child = spawn(process.execPath, [CLI, 'convert', '-i', input, '-o', output, '--overwrite', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      // Like `head -1`: take the first bytes of each stream, then close it.
      for (const stream of [child.stdout, child.stderr]) stream.once('data', () => stream.destroy());
      assert.deepEqual(await ended(child), { code: 0, signal: null });
      assert.deepEqual(await readdir(dir), ['out']);
      assert.ok((await readdir(output)).includes('report.json'));
    }
  });
  it('exits as a shell expects when stopped: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP, 137 when killed', async () => {
    const dir = await tempDir();
    /** Starts a conversion in a process group of its own and, once it is converting, signals it as `stop` says. */
    const stopped = async (stop: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stderr: string }> => {
      const output = path.join(dir, 'out');
      const args = [CLI, 'convert', '-i', input, '-o', output, '--num-proc', '1', '--writer-batch-size', '2'];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        if (stderr === '') stop(child);
        stderr += String(chunk);
      });
      const { code } = await ended(child);
      return { code, stderr };
    };
    const group = (signal: NodeJS.Signals) => (child: ReturnType<typeof spawn>): void => void process.kill(-(child.pid ?? 0), signal);
    // Ctrl-C reaches the whole foreground process group; the others are sent to the process alone.
    const ctrlC = await stopped(group('SIGINT'));
    assert.equal(ctrlC.code, 130, ctrlC.stderr);
    assert.match(ctrlC.stderr, /rlaif-v: interrupted\. Nothing half-written is left behind/);
    for (const [signal, code] of [['SIGTERM', 143], ['SIGHUP', 129]] as const) {
      const run = await stopped((child) => child.kill(signal));
      assert.equal(run.code, code, run.stderr);
      assert.match(run.stderr, new RegExp(`rlaif-v: stopped by ${signal}\\.`));
    }
    assert.deepEqual(await readdir(dir), []);
    if (existsSync('/proc/self/task')) {
      // The conversion runs in a child of the rlaif-v process (bin.js); the OOM killer would kill that child.
      const killed = await stopped((child) => {
        const pid = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
        process.kill(Number(pid), 'SIGKILL');
      });
      assert.equal(killed.code, 137);
    }
  });
  it('shows each Hub retry as it happens and stops at once on Ctrl-C; a name that does not resolve fails at once', async () => {
    // A port nothing listens on: every connection is refused, and retried with backoff for over a minute.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const dir = await tempDir();
    const env = { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${port}`, HF_HOME: dir, HF_TOKEN: 'hf_test' };
    const converted = path.join(dir, 'converted');
    assert.equal(spawnSync(process.execPath, [CLI, 'convert', '-i', input, '-o', converted, '--quiet']).status, 0);
    for (const args of [['convert', '-o', path.join(dir, 'out')], ['push', converted]]) {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += String(chunk);
        // The first retry is shown while the run is still waiting to try again: then Ctrl-C.
        if (/trying again in/.test(stderr)) process.kill(-(child.pid ?? 0), 'SIGINT');
      });
      const { code } = await ended(child);
      assert.equal(code, 130, `${args[0]}: ${stderr}`);
      assert.match(stderr, /^Hub: GET http:\/\/127\.0\.0\.1:\d+\/api\/\S+ failed \(.*ECONNREFUSED.*\); trying again in \d+s \(attempt 2\)$/m);
    }
    for (const args of [['convert', '-o', path.join(dir, 'out')], ['push', converted]]) {
      const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...env, HF_ENDPOINT: 'http://no-such-host.invalid' } });
      assert.equal(run.status, 1, run.stderr);
      assert.doesNotMatch(run.stderr, /trying again/);
      assert.match(run.stderr, /the name no-such-host\.invalid does not resolve \(ENOTFOUND\): no network, or a typo in HF_ENDPOINT/);
      assert.match(run.stderr, args[0] === 'push' ? /A push needs the Hub/ : /set HF_HUB_OFFLINE=1/);
    }
  });
  it('sample, stopped by Ctrl-C, leaves no partial file', async () => {
    const dir = await tempDir();
    const child = spawn(process.execPath, [CLI, 'sample', '--rows', '20000', '--output', dir], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    // Once the file is being written, Ctrl-C.
    while (!(await readdir(dir)).some((name) => name.endsWith('.partial'))) await new Promise((resolve) => setTimeout(resolve, 20));
    process.kill(-(child.pid ?? 0), 'SIGINT');
    assert.deepEqual(await ended(child), { code: 130, signal: null });
    assert.deepEqual(await readdir(dir), []);
  });
});
