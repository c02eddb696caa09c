import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { CLI, sampleDir, tempDir } from './fixtures.js';

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
    assert.match(ctrlC.stderr, /rlaif-v: interrupted\./);
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
});
