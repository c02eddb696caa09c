/**
 * The package ships what runs and nothing else: no test code, no dev-only benchmark; and `rlaif-v bench` runs from
 * the packed files alone (it once needed bench/limit.py, which was not in the package).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { readJson, ROOT, tempDir } from '../support/fixtures.js';

const run = promisify(execFile);

interface Manifest {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** The packages the TypeScript files under `dir` import by name (`hyparquet/src/x.js` is `hyparquet`), each once. */
async function importedPackages(dir: string): Promise<Set<string>> {
  const found = new Set<string>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries.filter((each) => each.isFile() && each.name.endsWith('.ts'))) {
    const text = await readFile(path.join(entry.parentPath, entry.name), 'utf8');
    for (const [, specifier] of text.matchAll(/^\s*(?:import|export)\b[^;'"]*?from\s+'([^'.][^']*)'|\bimport\(\s*'([^'.][^']*)'\s*\)/gm)) {
      if (specifier === undefined || specifier.startsWith('node:')) continue;
      const parts = specifier.split('/');
      found.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier));
    }
  }
  return found;
}

describe('the package', () => {
  it('declares every package it imports, the shipped code\'s as dependencies, and pins @huggingface/hub', async () => {
    const manifest = await readJson<Manifest>(path.join(ROOT, 'package.json'));
    const { dependencies = {}, devDependencies = {} } = manifest;
    const self = 'rlaif-v-convert';
    for (const dir of ['src', 'workers']) {
      for (const name of await importedPackages(path.join(ROOT, dir))) assert.ok(name === self || name in dependencies, `${dir}/ imports ${name}, not in dependencies`);
    }
    // Tests and scripts may use dev dependencies, but none found only because npm hoisted it (as xetchunk-wasm was).
    for (const dir of ['test', 'scripts', 'bench']) {
      for (const name of await importedPackages(path.join(ROOT, dir))) {
        assert.ok(name === self || name in dependencies || name in devDependencies, `${dir}/ imports ${name}, not in package.json`);
      }
    }
    // The test Hub hashes with the xetchunk-wasm @huggingface/hub chunks with: the same range.
    const hub = await readJson<Manifest>(path.join(ROOT, 'node_modules', '@huggingface', 'hub', 'package.json'));
    assert.equal(devDependencies['@huggingface/xetchunk-wasm'], hub.dependencies?.['@huggingface/xetchunk-wasm']);
    // A re-push's deduplication leans on an internal rule of 2.17 (see src/hub/upload-operation.ts): patch releases only.
    assert.match(dependencies['@huggingface/hub'] ?? '', /^~2\.17\.\d+$/);
  });

  it('holds no test code nor dev-only benchmark, and everything the command and its bench run', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: ROOT });
    const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]?.files.map((file) => file.path) ?? [];
    assert.deepEqual(
      files.filter((file) => file.startsWith('dist/test/') || file.startsWith('dist/bench/') || file.startsWith('dist/scripts/') || file.startsWith('test/')),
      [],
    );
    for (const needed of ['dist/src/bin.js', 'dist/src/cli/main.bundle.js', 'dist/workers/convert-batch.bundle.js', 'dist/src/bench/single-core-limit.js', 'bench/reference.py', 'bench/plain.py', 'bench/limit.py', 'wasm/jpeg-check.wasm']) {
      assert.ok(files.includes(needed), `${needed} is not in the package`);
    }
  });

  it('runs `rlaif-v bench` from the packed files', async () => {
    const dir = await tempDir();
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT });
    const tarball = path.join(dir, (JSON.parse(stdout) as { filename: string }[])[0]?.filename ?? '');
    await run('tar', ['-xzf', tarball, '-C', dir]);
    const installed = path.join(dir, 'package');
    // Its dependencies as an install would give them (and the Python environment, when the tests made one).
    await symlink(path.join(ROOT, 'node_modules'), path.join(installed, 'node_modules'));
    const results = path.join(dir, 'results');
    await run(process.execPath, [path.join(installed, 'dist', 'src', 'bin.js'), 'bench', '--rows', '40', '--num-proc', '1', '--writer-batch-size', '32', '--repeats', '1', '--results-dir', results], {
      cwd: dir,
      env: { ...process.env, MALLOC_ARENA_MAX: '2' },
    });
    const written = await readdir(results);
    const json = written.find((name) => name.endsWith('.json'));
    assert.ok(json !== undefined, `no results in ${written.join(', ')}`);
    const bench = await readJson<{ points: { rowsPerSecond: { median: number } }[]; input: { rows: number } }>(path.join(results, json));
    assert.equal(bench.input.rows, 40);
    assert.equal(bench.points.length, 1);
    assert.ok((bench.points[0]?.rowsPerSecond.median ?? 0) > 0);
  });
});
