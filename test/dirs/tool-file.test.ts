import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeCheckpoint, type Checkpoint } from '../../src/run/checkpoint.js';
import { readLock } from '../../src/dirs/file-lock.js';
import { writePartManifest, type PartManifest } from '../../src/run/part-manifest.js';
import { createMarker, MARKER_FILE, readMarker } from '../../src/dirs/tool-marker.js';
import { tempDir } from '../support/fixtures.js';

/** A file outside the directory, which a link left in the directory points to. */
async function victim(): Promise<string> {
  const file = path.join(await tempDir(), 'thesis.txt');
  await writeFile(file, 'my precious thesis');
  return file;
}

describe('files the tool writes and reads in its directories', () => {
  it('are never written through a link left at a temporary name (the checkpoint, a part\'s manifest)', async () => {
    const dir = await tempDir();
    const target = await victim();
    // What the tool once wrote to, under a fixed name, before renaming it into place.
    await symlink(target, path.join(dir, 'checkpoint.json.tmp'));
    await symlink(target, path.join(dir, 'part.json.tmp'));
    const checkpoint: Checkpoint = { version: 1, fingerprint: 'f', row: 0, splits: {}, pendingFrom: {}, rejects: { segments: [], counts: {} } };
    await writeCheckpoint(dir, checkpoint);
    await writePartManifest(dir, { version: 1, fingerprint: 'f' } as unknown as PartManifest);
    assert.equal(await readFile(target, 'utf8'), 'my precious thesis');
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'checkpoint.json'), 'utf8')), checkpoint);
    assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.tmp')).sort(), ['checkpoint.json.tmp', 'part.json.tmp'], 'no temporary file of its own left');
  });

  it('read a marker or a lock only from a small file of its own: not through a link, not a pipe, not a huge file', async () => {
    const real = await tempDir();
    await createMarker(real, 'cache');
    const dir = await tempDir();
    await symlink(path.join(real, MARKER_FILE), path.join(dir, MARKER_FILE));
    assert.equal(await readMarker(dir), null, 'a link');
    const huge = await tempDir();
    await writeFile(path.join(huge, MARKER_FILE), JSON.stringify({ ...(await readMarker(real)), padding: 'x'.repeat(100_000) }));
    assert.equal(await readMarker(huge), null, 'a huge file');
    assert.notEqual(await readMarker(real), null);

    const locks = await tempDir();
    await writeFile(path.join(locks, 'real.json'), JSON.stringify({ host: hostname(), pid: process.pid, token: 't' }));
    await symlink(path.join(locks, 'real.json'), path.join(locks, 'lock.json'));
    assert.equal(await readLock(path.join(locks, 'lock.json')), null, 'a linked lock');
    assert.notEqual(await readLock(path.join(locks, 'real.json')), null);

    // A named pipe in a marker's place: reading it would wait forever for a writer.
    const piped = await tempDir();
    await mkdir(piped, { recursive: true });
    if (spawnSync('mkfifo', [path.join(piped, MARKER_FILE)]).status !== 0) return;
    assert.equal(await readMarker(piped), null, 'a pipe');
  });
});
