import { randomUUID } from 'node:crypto';
import { link, lstat, lutimes, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { RlaifError } from '../errors.js';
import { readSmallFile } from './tool-file.js';

/**
 * Lock files that runs on several machines sharing a filesystem can trust: each names its holder (host and process
 * id) and has its mtime renewed while the holder lives. A lock of this host whose process is gone, or of another host
 * not renewed for two minutes, is a dead run's.
 */

/** Who holds a lock: a host and process, and a token of its own, different for every lock taken. */
export interface LockHolder {
  host: string;
  pid: number;
  /** Random, one per lock taken: how a holder knows the lock is still its own (absent in locks of older versions). */
  token?: string;
}

/** How often a holder renews its lock, and how old a lock of another host must be to count as its holder's death. */
export const LOCK_RENEW_MS = 15_000;
export const LOCK_STALE_MS = 120_000;

/** Whether a process with this id is running (or exists, but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the run with this process id still runs, given up to `graceMs` to end: a process killed a moment ago (as by
 * `kill -9` just before the same command was run again) takes a while to go, its memory being freed. On Linux, one
 * whose command line is gone is on its way out (or a zombie) and does not count.
 */
export async function runsStill(pid: number, graceMs = 5000): Promise<boolean> {
  const running = async (): Promise<boolean> => {
    if (!isAlive(pid)) return false;
    if (process.platform !== 'linux') return true;
    const commandLine = await readFile(`/proc/${pid}/cmdline`).catch(() => null);
    return commandLine !== null && commandLine.byteLength > 0;
  };
  for (let waited = 0; waited < graceMs; waited += 100) {
    if (!(await running())) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return running();
}

/** A lock holds a host, a pid and a token: anything much larger in its place is not one. */
const MAX_LOCK_BYTES = 4096;

/** The lock in `file` and how long ago it was last renewed, or null when there is none (or it cannot be read). */
export async function readLock(file: string): Promise<{ lock: LockHolder; ageMs: number } | null> {
  try {
    // A lock is a small file of its own: a link in its place (or anything else) is no lock, never read through.
    const [text, info] = await Promise.all([readSmallFile(file, MAX_LOCK_BYTES), lstat(file)]);
    if (text === null) return null;
    const lock = JSON.parse(text) as LockHolder;
    return typeof lock.host === 'string' && Number.isInteger(lock.pid) ? { lock, ageMs: Date.now() - info.mtimeMs } : null;
  } catch {
    return null;
  }
}

/** Whether two locks are the same lock taken: the same token (or, for locks without one, holder). */
function sameLock(a: LockHolder, b: LockHolder): boolean {
  return a.token !== undefined || b.token !== undefined ? a.token === b.token : a.host === b.host && a.pid === b.pid;
}

/** The holder of the lock in `file` while it lives, or null: no lock, or a dead run's (see the module's comment). */
export async function liveLockHolder(file: string, graceMs?: number): Promise<LockHolder | null> {
  const held = await readLock(file);
  if (held === null) return null;
  // This process's own lock lives; one that names this process but not one of its tokens is a dead run's whose
  // process id this one now has (PID 1 in every container).
  if (held.lock.host === hostname() && held.lock.pid === process.pid) return held.lock.token !== undefined && ownTokens.has(held.lock.token) ? held.lock : null;
  const live = held.lock.host === hostname() ? await runsStill(held.lock.pid, graceMs) : held.ageMs < LOCK_STALE_MS;
  return live ? held.lock : null;
}

/** The tokens of the locks this process holds. */
const ownTokens = new Set<string>();

/** A lock this process holds. */
export interface HeldLock {
  /**
   * Stops renewing it and removes it, unless another run has taken it over meanwhile. `at`: where the lock file is now,
   * when the directory holding it was moved (a staging directory published with its lock).
   */
  release(at?: string): Promise<void>;
  /**
   * Checks that the lock is still this one's (its file holds this lock's token), as a holder must before each step that
   * others could see (a checkpoint, publishing): a holder suspended past LOCK_STALE_MS may have lost it to another.
   *
   * @throws {LockLostError} when another run holds it now, or it is gone.
   */
  verify(): Promise<void>;
}

/** The lock a run held is another's now (or gone): it must stop before writing anything more (exit 1). */
export class LockLostError extends RlaifError {
  constructor(file: string, now: LockHolder | null) {
    super(
      'ERR_LOCK_LOST',
      `The lock ${file} is no longer this run's: ${now === null ? 'it is gone' : `process ${now.pid} on ${now.host} holds it now`} ` +
        '(this run was stopped or suspended for longer than a lock is kept, and another run took over). This run stops without writing more.',
    );
    this.name = 'LockLostError';
  }
}

/** Renews the lock in `file` every LOCK_RENEW_MS, while it is still `mine`, until the returned function is called. */
export function renewLock(file: string, mine: LockHolder): () => void {
  const timer = setInterval(() => {
    void readLock(file).then((held) => {
      // Another's now: left alone (renewing it would keep a lock alive for a run that may be gone).
      if (held === null || !sameLock(held.lock, mine)) {
        clearInterval(timer);
        return;
      }
      const now = new Date();
      // lutimes: the lock itself, never what a link put in its place since would point to.
      return lutimes(file, now, now).catch(() => undefined);
    });
  }, LOCK_RENEW_MS);
  timer.unref();
  return () => clearInterval(timer);
}

function isCode(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException).code === code;
}

/**
 * Creates `file` holding `content`, or fails with EEXIST: written aside, then hard-linked into place, so that no one
 * ever reads the lock half-written (a filesystem without hard links gets an exclusive create instead).
 */
async function createWith(file: string, content: string): Promise<void> {
  const temp = `${file}.${hostname()}-${process.pid}-${randomUUID()}`;
  await writeFile(temp, content);
  try {
    await link(temp, file);
  } catch (error) {
    if (isCode(error, 'EEXIST')) throw error;
    const handle = await open(file, 'wx');
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
  } finally {
    await rm(temp, { force: true });
  }
}

/** Waits injected by the tests between a taker's look at a lock and its moving it aside (see tryLock). */
export interface LockHooks {
  beforeTakeover?: () => Promise<void>;
}

/**
 * Tries once to take the lock in `file` (its directory must exist). A dead run's lock is moved aside first, by a rename
 * only one taker can win, and removed only when what was moved is exactly the lock seen dead (the same file, the same
 * token): otherwise, another taker's lock moved by mistake, it is put back. Resolves with the lock, or with its live
 * holder. `graceMs`: how long a process of this host just killed is given to be gone.
 */
export async function tryLock(file: string, graceMs?: number, hooks: LockHooks = {}): Promise<{ lock: HeldLock } | { holder: LockHolder }> {
  const me: LockHolder = { host: hostname(), pid: process.pid, token: randomUUID() };
  for (;;) {
    try {
      await createWith(file, `${JSON.stringify(me)}\n`);
      ownTokens.add(me.token ?? '');
      const stop = renewLock(file, me);
      const verify = async (): Promise<void> => {
        const held = await readLock(file);
        if (held === null || !sameLock(held.lock, me)) throw new LockLostError(file, held?.lock ?? null);
      };
      return {
        lock: {
          release: async (at = file) => {
            stop();
            ownTokens.delete(me.token ?? '');
            const held = await readLock(at);
            if (held !== null && sameLock(held.lock, me)) await rm(at, { force: true });
          },
          verify,
        },
      };
    } catch (error) {
      if (!isCode(error, 'EEXIST')) throw error;
    }
    // What is there now, and which file it is: only this very file may be moved aside and removed.
    const seen = await stat(file).catch(() => null);
    if (seen === null) continue; // released meanwhile: try again
    const held = await readLock(file);
    if (held === null) {
      // Unreadable (cut short by a crash, or made by something else): stale once it has not been renewed for long.
      if (Date.now() - seen.mtimeMs < LOCK_STALE_MS) return { holder: { host: 'unknown', pid: 0 } };
    } else {
      const holder = await liveLockHolder(file, graceMs);
      if (holder !== null) return { holder };
    }
    await hooks.beforeTakeover?.();
    const aside = `${file}.stale-${randomUUID()}`;
    try {
      await rename(file, aside);
    } catch (error) {
      if (isCode(error, 'ENOENT')) continue;
      throw error;
    }
    const moved = await stat(aside).catch(() => null);
    const movedLock = await readLock(aside);
    const same = moved !== null && moved.ino === seen.ino && moved.dev === seen.dev && (held === null ? movedLock === null : movedLock !== null && sameLock(movedLock.lock, held.lock));
    if (!same) {
      // Another taker's lock, made between our look and our move: put back (unless the place is taken again, when
      // that taker finds its lock gone at its next check and stops).
      await link(aside, file).catch(() => undefined);
    }
    await rm(aside, { force: true });
  }
}

/**
 * Takes the lock in `file` (its directory must exist), waiting while a live run holds it (another of this process's
 * calls included) and taking over a dead run's. Resolves with the function that releases it.
 */
export async function acquireLock(file: string, options: { signal?: AbortSignal | undefined; pollMs?: number } = {}): Promise<() => Promise<void>> {
  for (;;) {
    options.signal?.throwIfAborted();
    const taken = await tryLock(file, 0);
    if ('lock' in taken) return () => taken.lock.release();
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}
