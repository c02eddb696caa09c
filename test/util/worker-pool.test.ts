import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../support/fixtures.js';

describe('the worker pool', () => {
  it('can be stopped at any moment after it starts without aborting the process', { timeout: 300_000 }, () => {
    // Node aborts the whole process (a FATAL ERROR in require() of an ES module) when a worker is terminated while
    // it loads its module: a failed plan or a tiny run stops the pool that soon. Stop pools again and again, at
    // every moment of their workers' start-up, in a process of its own.
    const script = `
      import { createPool } from ${JSON.stringify(path.join(ROOT, 'dist', 'src', 'util', 'worker-pool.js'))};
      const filename = ${JSON.stringify(path.join(ROOT, 'dist', 'workers', 'convert-batch.bundle.js'))};
      for (let i = 0; i < 150; i++) {
        const pool = createPool({ filename, minThreads: 2, maxThreads: 2 });
        await new Promise((resolve) => setTimeout(resolve, i % 40));
        await pool.destroy();
      }
      console.log('stopped 150 pools');
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(run.signal, null, run.stderr.slice(0, 2000));
    assert.equal(run.status, 0, run.stderr.slice(0, 2000));
    assert.match(run.stdout, /stopped 150 pools/);
  });
});
