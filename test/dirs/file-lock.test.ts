import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock, LOCK_STALE_MS, LockLostError, tryLock, type HeldLock } from '../../src/dirs/file-lock.js';
import { tempDir } from '../support/fixtures.js';

/** The id of a process that has ended. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid ?? 0;
}

describe('file locks', () => {
  it('are taken by one of many at once, and by the next once released', async () => {
    const file = path.join(await tempDir(), 'x.lock');
    const tries = await Promise.all(Array.from({ length: 8 }, () => tryLock(file, 0)));
    const taken = tries.filter((result) => 'lock' in result);
    assert.equal(taken.length, 1);
    const first = taken[0];
    assert.ok(first !== undefined && 'lock' in first);
    await first.lock.release();
    assert.ok('lock' in (await tryLock(file, 0)));
  });

  it('take over a dead run\'s lock, and an unreadable one once it is old, but not a live one', async () => {
    const dir = await tempDir();
    const dead = path.join(dir, 'dead.lock');
    await writeFile(dead, JSON.stringify({ host: hostname(), pid: deadPid() }));
    assert.ok('lock' in (await tryLock(dead, 0)));
    const live = path.join(dir, 'live.lock');
    await writeFile(live, JSON.stringify({ host: hostname(), pid: process.ppid }));
    assert.deepEqual(await tryLock(live, 0), { holder: { host: hostname(), pid: process.ppid } });
    // Another host's lock lives while it is renewed.
    const elsewhere = path.join(dir, 'elsewhere.lock');
    await writeFile(elsewhere, JSON.stringify({ host: 'another-host', pid: 1 }));
    assert.ok('holder' in (await tryLock(elsewhere, 0)));
    const old = new Date(Date.now() - LOCK_STALE_MS - 1000);
    await utimes(elsewhere, old, old);
    assert.ok('lock' in (await tryLock(elsewhere, 0)));
    // A lock cut short by a crash: held while recent, taken once old.
    const empty = path.join(dir, 'empty.lock');
    await writeFile(empty, '');
    assert.ok('holder' in (await tryLock(empty, 0)));
    await utimes(empty, old, old);
    assert.ok('lock' in (await tryLock(empty, 0)));
    assert.deepEqual((await readdir(dir)).sort(), ['dead.lock', 'elsewhere.lock', 'empty.lock', 'live.lock'], 'no files left aside');
  });

  it("never remove another taker's lock made between their look at a dead one and their move", async () => {
    const file = path.join(await tempDir(), 'race.lock');
    await writeFile(file, JSON.stringify({ host: hostname(), pid: deadPid() }));
    let third: Awaited<ReturnType<typeof tryLock>> | null = null;
    // B sees the dead lock; before it moves it aside, C takes the lock over (the dead one gone, C's made).
    const second = await tryLock(file, 0, {
      beforeTakeover: async () => {
        third = await tryLock(file, 0);
      },
    });
    assert.ok(third !== null && 'lock' in third, 'C took the dead lock');
    assert.ok('holder' in second, 'B found C holding it, and did not take it too');
    await (third as { lock: HeldLock }).lock.verify();
  });

  it('never let two takers both win an unreadable stale lock', async () => {
    const file = path.join(await tempDir(), 'empty.lock');
    await writeFile(file, '');
    const old = new Date(Date.now() - LOCK_STALE_MS - 1000);
    await utimes(file, old, old);
    let third: Awaited<ReturnType<typeof tryLock>> | null = null;
    const second = await tryLock(file, 0, {
      beforeTakeover: async () => {
        third = await tryLock(file, 0);
      },
    });
    const winners = [second, third].filter((taken) => taken !== null && 'lock' in taken);
    assert.equal(winners.length, 1, 'one taker holds it');
    assert.deepEqual((await readdir(path.dirname(file))).sort(), ['empty.lock'], 'nothing left aside');
  });

  it('tell their holder when another has taken them over (a holder suspended past their life)', async () => {
    const file = path.join(await tempDir(), 'fenced.lock');
    const taken = await tryLock(file, 0);
    assert.ok('lock' in taken);
    await taken.lock.verify();
    await writeFile(file, JSON.stringify({ host: 'another-host', pid: 7, token: 'theirs' }));
    await assert.rejects(taken.lock.verify(), (error: unknown) => error instanceof LockLostError && error.code === 'ERR_LOCK_LOST' && /process 7 on another-host holds it now/.test(error.message));
    await taken.lock.release();
    assert.match(await readFile(file, 'utf8'), /theirs/, 'released, it leaves the other run\'s lock alone');
    // A lock naming this very process but not one of its locks: a dead run's whose process id this one now has.
    await writeFile(file, JSON.stringify({ host: hostname(), pid: process.pid, token: 'a predecessor' }));
    assert.ok('lock' in (await tryLock(file, 0)));
  });

  it('make a waiter wait until the holder lets go', async () => {
    const file = path.join(await tempDir(), 'wait.lock');
    const release = await acquireLock(file);
    let second = false;
    const waiting = acquireLock(file, { pollMs: 10 }).then((letGo) => {
      second = true;
      return letGo;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(second, false);
    await release();
    await (await waiting)();
    assert.equal(second, true);
  });
});
