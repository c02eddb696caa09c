/**
 * The layout of src/ holds: folders by stage, one level deep, each importing only the folders below it in the stack,
 * no module cycle, and src/ never importing workers/ (it names them by URL through src/util/paths.ts). Read from the
 * sources, as text: every `import ... from`, `export ... from` and `import()` with a relative path.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../support/fixtures.js';

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

/** Lines a function may take (the yargs command table, a chain of calls rather than a function, is not one). */
const MAX_FUNCTION_LINES = 80;

/** A line that opens a function: a declaration, a method, or an arrow function bound to a name. */
const FUNCTION_START =
  /^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\*?\s*(\w+)|^\s+(?:(?:private|public|protected|static|readonly|override)\s+)*(?:async\s+)?\*?#?(\w+)\s*(?:<[^>]*>)?\([^;]*\)\s*(?::[^;=]*)?\{\s*$|^\s*(?:export\s+)?const\s+(\w+)\s*=.*=>\s*\{\s*$/;
const CONTROL = /^\s*(?:if|for|while|switch|catch|return|else|do|try)\b/;

/** Braces of a line of code, strings and line comments left out (a heuristic: template literals on one line only). */
function braces(line: string): number {
  const code = line.replace(/\/\/.*$/, '').replace(/'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`/g, '""');
  return (code.match(/\{/g)?.length ?? 0) - (code.match(/\}/g)?.length ?? 0);
}

/** The functions of `source` over `limit` lines, as `name (lines)`. */
function longFunctions(source: string, limit = MAX_FUNCTION_LINES): string[] {
  const lines = source.split('\n');
  const long: string[] = [];
  lines.forEach((line, start) => {
    const match = FUNCTION_START.exec(line);
    if (match === null || CONTROL.test(line)) return;
    let depth = 0;
    let end = start;
    for (let at = start; at < lines.length; at++) {
      depth += braces(lines[at] ?? '');
      end = at;
      if (depth <= 0 && (lines[at] ?? '').includes('}')) break;
    }
    if (end - start + 1 > limit) long.push(`${match[1] ?? match[2] ?? match[3]} (${end - start + 1})`);
  });
  return long;
}

describe('the layout of src/', () => {
  const graph = importGraph();

  it('is folders one level deep, each of them (and each module at the root) in the stack', () => {
    for (const module of graph.keys()) {
      assert.ok(module.split('/').length <= 2, `${module} lies deeper than one folder`);
      assert.ok(rank(module) >= 0, `${module} is in no folder of the stack: add it to STACK in test/project/layout.test.ts, in its place`);
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

  it(`has no function over ${MAX_FUNCTION_LINES} lines`, () => {
    const long = [...graph.keys()].flatMap((module) => longFunctions(readFileSync(path.join(SRC, module), 'utf8')).map((found) => `${module}: ${found}`));
    assert.deepEqual(long, []);
  });

  it('would catch a long function, method and arrow function', () => {
    const body = (n: number): string => Array.from({ length: n }, (_, i) => `  const a${i} = { b: '}' };`).join('\n');
    const made = [`export async function* long() {\n${body(81)}\n}`, `function short() {\n${body(10)}\n}`, `class A {\n  async method(x: number): Promise<void> {\n${body(90)}\n  }\n}`, `const arrow = async (x) => {\n${body(85)}\n};`].join('\n');
    assert.deepEqual(longFunctions(made), ['long (83)', 'method (92)', 'arrow (87)']);
  });

  it('is mapped in the README: its table of folders names each folder of src/, in the order of the stack', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const tree = readme.slice(readme.indexOf('### The tree'), readme.indexOf('Start reading at'));
    const mapped = [...tree.matchAll(/^\| `([a-z]+)\/` \|/gm)].map((match) => match[1]);
    const folders = STACK.filter((entry) => !entry.endsWith('.ts'));
    assert.deepEqual(mapped, folders);
    for (const folder of folders) assert.ok(statSync(path.join(SRC, folder)).isDirectory(), `src/${folder} is in the stack but not in src/`);
  });

  it('keeps workers/ to thin thread entries: a few lines each, their logic imported from src/', () => {
    const dir = path.join(ROOT, 'workers');
    for (const name of readdirSync(dir)) {
      const text = readFileSync(path.join(dir, name), 'utf8');
      const code = text.split('\n').filter((line) => line.trim() !== '' && !/^\s*(\/\*\*|\*|\/\/)/.test(line));
      assert.ok(name.endsWith('.ts') && code.length <= 8, `workers/${name} holds ${code.length} lines of code: its logic belongs in src/`);
      for (const [, target] of text.matchAll(/from\s+'([^']+)'/g)) {
        assert.ok(target?.startsWith('../src/') || target?.startsWith('node:'), `workers/${name} imports ${target}, not from src/`);
      }
    }
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
