import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
    input = await sampleDir(60);
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
});
