import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { SIBLING_SUFFIXES } from '../../src/dirs/staging.js';
import { killAfterCheckpoint, runCli, sampleDir, tempDir } from '../support/fixtures.js';

/**
 * The bystander test: around the input, the output and the cache lie a user's files and folders under names that
 * imitate every name this tool uses (generated from its own list, so a new one cannot escape), a renamed output of this
 * tool among them; every command that writes or removes runs, killed runs are taken up, and not one of those files
 * may be changed, moved or removed.
 */

/** Every file under `dir` with the SHA-256 of its bytes, less what `skip` says is the tool's own. */
async function snapshot(dir: string, skip: (relative: string) => boolean): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const relative = path.relative(dir, file);
    if (!skip(relative)) files.set(relative, createHash('sha256').update(await readFile(file)).digest('hex'));
  }
  return files;
}

/** Names a user may give, built on each name the tool makes beside an output, and on the names older versions used. */
function lookalikes(output: string): string[] {
  const bases = [...SIBLING_SUFFIXES, '.old', '.removing'];
  return bases.flatMap((suffix) => [`${output}${suffix}-20240101`, `${output}${suffix}-99999`, `${output}${suffix}-backup-2`, `${output}${suffix}.bak`]);
}

describe('a bystander', () => {
  let root: string;
  let input: string;
  let cache: string;
  let before_: Map<string, string>;
  /** What the tool makes itself: the outputs it is told to write, their staging directories, and its cache entries. */
  const ours = (relative: string): boolean =>
    /^(out|rlaif)(\.partial)?(\/|$)/.test(relative.split(path.sep).join('/')) || /^cache\/(images\/[0-9a-f]{24}|verdicts\/[^/]+\.log$|\.rlaif-v\.json$|CACHEDIR\.TAG$)/.test(relative.split(path.sep).join('/'));

  before(async () => {
    root = await tempDir();
    input = path.join(root, 'src');
    await cp(await sampleDir(300, { files: 2 }), input, { recursive: true });
    // The user's things: look-alikes of every name beside the output, each holding files, one a renamed output.
    const output = path.join(root, 'out');
    for (const name of lookalikes(output)) {
      await mkdir(path.join(name, 'data'), { recursive: true });
      await writeFile(path.join(name, 'data', 'train-00000-of-00001.parquet'), `the user's ${path.basename(name)}`);
      await writeFile(path.join(name, 'notes.txt'), 'keep me');
    }
    const renamed = await runCli(['convert', '-i', input, '-o', path.join(root, 'kept'), '--quiet']);
    assert.equal(renamed.code, 0, renamed.stderr);
    await rename(path.join(root, 'kept'), `${output}.old-20240102`);
    // An input named like a leftover of an output beside it.
    await cp(input, path.join(root, 'rlaif.old-99999'), { recursive: true });
    // A cache holding other files than its own.
    cache = path.join(root, 'cache');
    const made = await runCli(['convert', '-i', input, '-o', path.join(root, 'warm'), '--quiet'], { env: { RLAIF_V_CACHE: cache } });
    assert.equal(made.code, 0, made.stderr);
    await writeFile(path.join(cache, 'thesis.pdf'), 'my thesis');
    await mkdir(path.join(cache, 'images', 'cats'), { recursive: true });
    await writeFile(path.join(cache, 'images', 'cats', 'cat1.jpg'), 'a cat');
    await writeFile(path.join(cache, 'verdicts-notes.txt'), 'notes');
    before_ = await snapshot(root, ours);
    assert.ok(before_.size > 30, `${before_.size} bystander files`);
  });

  it('keeps every file it did not make through convert, overwrite, kills and resumes, parts, finalize and the cache', async () => {
    const env = { RLAIF_V_CACHE: cache };
    const out = path.join(root, 'out');
    const convert = ['convert', '-i', input, '-o', out, '--quiet', '--checkpoint-every', '100KB', '--num-proc', '2'];
    const steps: [string, string[], number][] = [
      ['convert', convert, 0],
      ['convert again (refused: the output exists)', convert, 2],
      ['convert --overwrite', [...convert, '--overwrite'], 0],
      ['convert --overwrite --no-resume', [...convert, '--overwrite', '--no-resume', '--seed', '3'], 0],
      ['the input named like a leftover', ['convert', '-i', path.join(root, 'rlaif.old-99999'), '-o', path.join(root, 'rlaif'), '--quiet'], 0],
    ];
    for (const [what, args, code] of steps) {
      const run = await runCli(args, { env });
      assert.equal(run.code, code, `${what}: ${run.stderr}`);
    }
    // Killed after a checkpoint, at three moments, and taken up.
    for (const delay of [0, 40, 120]) {
      await killAfterCheckpoint([...convert, '--overwrite', '--seed', String(10 + delay)], `${out}.partial`, delay);
      const again = await runCli([...convert, '--overwrite', '--seed', String(10 + delay)], { env });
      assert.equal(again.code, 0, again.stderr);
    }
    // In parts, then finalize; again over the output with overwrite.
    for (const seed of ['5', '6']) {
      for (let index = 0; index < 2; index++) {
        const part = await runCli([...convert, '--num-shards', '2', '--shard-index', String(index), '--overwrite', '--seed', seed], { env });
        assert.equal(part.code, 0, part.stderr);
      }
      const finalized = await runCli(['finalize', out, '--quiet', '--overwrite'], { env });
      assert.equal(finalized.code, 0, finalized.stderr);
    }
    // The cache kept to a tiny size, then cleared.
    const trimmed = await runCli([...convert, '--overwrite', '--images', 'png', '--cache-size', '1KB'], { env });
    assert.equal(trimmed.code, 0, trimmed.stderr);
    const cleared = await runCli(['cache', 'clear'], { env });
    assert.equal(cleared.code, 0, cleared.stderr);

    const after = await snapshot(root, ours);
    for (const [file, hash] of before_) assert.equal(after.get(file), hash, `${file} was ${after.has(file) ? 'changed' : 'removed'}`);
    const made = [...after.keys()].filter((file) => !before_.has(file) && !file.startsWith('warm'));
    assert.deepEqual(made, [], 'nothing was made outside the outputs and the cache');
  });
});
