import assert from 'node:assert/strict';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { inspectInput } from '../../src/plan/inspect-input.js';
import { runCli, sampleDir, tempDir } from '../support/fixtures.js';

const options = { maxRowGroupBytes: 2 ** 30, streamRowGroupBytes: 1 };

describe('inspectInput', () => {
  let source: string;
  let names: string[];

  before(async () => {
    source = await sampleDir(40, { files: 2 });
    names = (await readdir(source)).filter((name) => name.endsWith('.parquet')).sort();
  });

  it('reads the parquet files a directory links to, as in a Hugging Face cache snapshot', async () => {
    // snapshots/<commit>/ holds links into blobs/, as huggingface_hub lays out its cache.
    const cache = await tempDir();
    const snapshot = path.join(cache, 'snapshots', 'abc123');
    await mkdir(snapshot, { recursive: true });
    for (const name of names) await symlink(path.join(source, name), path.join(snapshot, name));
    const plan = await inspectInput([snapshot], options);
    assert.deepEqual(
      plan.files.map((file) => file.path),
      names.map((name) => path.join(snapshot, name)),
    );
    assert.equal(plan.rows, 40);
  });

  it('reads a file given twice once, and says which', async () => {
    const first = path.join(source, names[0] ?? '');
    const plan = await inspectInput([source, first], options);
    assert.equal(plan.rows, 40);
    assert.deepEqual(plan.duplicates, [{ path: first, sameAs: first }]);
    const link = path.join(await tempDir(), 'other-name.parquet');
    await symlink(first, link);
    const linked = await inspectInput([first, link, source], options);
    assert.equal(linked.rows, 40);
    // A link to a file already given is that file; so is the file again inside a directory.
    assert.deepEqual(linked.duplicates, [
      { path: link, sameAs: first },
      { path: first, sameAs: first },
    ]);
    assert.deepEqual(linked.files.map((file) => file.path), [first, path.join(source, names[1] ?? '')]);
  });

  it('warns on the command line, and converts each row once', async () => {
    const first = path.join(source, names[0] ?? '');
    const result = await runCli(['convert', '-i', source, '-i', first, '-o', path.join(await tempDir(), 'out'), '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`Warning: ${first.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is the same file as \\S+, given before: it is read once\\.`));
    const report = JSON.parse(result.stdout) as { input: { rows: number; duplicates: unknown[] } };
    assert.equal(report.input.rows, 40);
    assert.equal(report.input.duplicates.length, 1);
  });
});
