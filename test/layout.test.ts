/**
 * The layout of src/ holds: folders by stage, one level deep, each importing only the folders below it in the stack,
 * no module cycle, and src/ never importing workers/ (it names them by URL through src/util/paths.ts). Read from the
 * sources, as text: every `import ... from`, `export ... from` and `import()` with a relative path.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './fixtures.js';

/** Bottom to top: a folder imports only those before it (the modules at src/'s root are named as files). */
const STACK = ['errors.ts', 'util', 'dirs', 'parquet', 'source', 'image', 'output', 'hub', 'options', 'plan', 'read', 'write', 'work', 'run', 'verify', 'bench', 'cli', 'index.ts', 'bin.ts'];

/** Imports allowed against the stack (none today: say why beside any added). */
const ALLOWED = new Set<string>();

const SRC = path.join(ROOT, 'src');
const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? modules(full) : name.endsWith('.ts') && !name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Each module of src/ (relative to it) with the modules it imports (relative to src/; outside it, starting with ..). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of modules(SRC)) {
    const targets = [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((match) =>
      path.relative(SRC, path.join(path.dirname(file), (match[1] ?? '').replace(/\.js$/, '.ts'))).split(path.sep).join('/'),
    );
    graph.set(path.relative(SRC, file).split(path.sep).join('/'), targets);
  }
  return graph;
}

/** A module's place in the stack: its folder's, or its own at src/'s root. */
function rank(module: string): number {
  return STACK.indexOf(module.split('/')[0] ?? '');
}

/** Every import of `graph` that does not go to a folder below its module's (nor is allowed). */
function upwardImports(graph: Map<string, string[]>): string[] {
  const upward: string[] = [];
  for (const [module, targets] of graph) {
    for (const target of targets) {
      if (ALLOWED.has(`${module} -> ${target}`)) continue;
      if (target.startsWith('..')) upward.push(`${module} imports ${target}, outside src/`);
      else if (module.split('/')[0] === target.split('/')[0]) continue;
      else if (rank(target) >= rank(module)) upward.push(`${module} imports ${target}, which is not below it`);
    }
  }
  return upward;
}

describe('the layout of src/', () => {
  const graph = importGraph();

  it('is folders one level deep, each of them (and each module at the root) in the stack', () => {
    for (const module of graph.keys()) {
      assert.ok(module.split('/').length <= 2, `${module} lies deeper than one folder`);
      assert.ok(rank(module) >= 0, `${module} is in no folder of the stack: add it to STACK in test/layout.test.ts, in its place`);
    }
  });

  it('has each folder import only the folders below it, and never workers/', () => {
    assert.deepEqual(upwardImports(graph), []);
  });

  it('has no cycle of modules', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (module: string, trail: string[]): void => {
      if (state.get(module) === 'done') return;
      if (state.get(module) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(module)), module].join(' -> '));
        return;
      }
      state.set(module, 'open');
      for (const target of graph.get(module) ?? []) if (graph.has(target) && !ALLOWED.has(`${module} -> ${target}`)) visit(target, [...trail, module]);
      state.set(module, 'done');
    };
    for (const module of graph.keys()) visit(module, []);
    assert.deepEqual(cycles, []);
  });

  it('would catch an upward import, one into workers/, and one from a root module above its importer', () => {
    const made = new Map([
      ['output/card.ts', ['run/convert.ts', 'util/paths.ts', 'output/schema.ts', 'errors.ts']],
      ['read/batches.ts', ['../workers/read-parquet.ts']],
      ['errors.ts', ['write/shard.ts']],
      ['util/format.ts', ['index.ts']],
    ]);
    assert.deepEqual(upwardImports(made), [
      'output/card.ts imports run/convert.ts, which is not below it',
      'read/batches.ts imports ../workers/read-parquet.ts, outside src/',
      'errors.ts imports write/shard.ts, which is not below it',
      'util/format.ts imports index.ts, which is not below it',
    ]);
  });
});
