import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

/**
 * Lock files that runs on several machines sharing a filesystem can trust: each names its holder (host and process
 * id) and has its mtime renewed while the holder lives. A lock of this host whose process is gone, or of another host
 * not renewed for two minutes, is a dead run's.
 */

/** Who holds a lock. */
export interface LockHolder {
  host: string;
  pid: number;
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

/** The lock in `file` and how long ago it was last renewed, or null when there is none (or it cannot be read). */
export async function readLock(file: string): Promise<{ lock: LockHolder; ageMs: number } | null> {
  try {
    const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    const lock = JSON.parse(text) as LockHolder;
    return typeof lock.host === 'string' && Number.isInteger(lock.pid) ? { lock, ageMs: Date.now() - info.mtimeMs } : null;
  } catch {
    return null;
  }
}

/** The holder of the lock in `file` while it lives, or null: no lock, or a dead run's (see the module's comment). */
export async function liveLockHolder(file: string, graceMs?: number): Promise<LockHolder | null> {
  const held = await readLock(file);
  if (held === null) return null;
  if (held.lock.host === hostname() && held.lock.pid === process.pid) return held.lock;
  const live = held.lock.host === hostname() ? await runsStill(held.lock.pid, graceMs) : held.ageMs < LOCK_STALE_MS;
  return live ? held.lock : null;
}

/** Renews the lock in `file` every LOCK_RENEW_MS until the returned function is called (which does not remove it). */
export function renewLock(file: string): () => void {
  const timer = setInterval(() => {
    const now = new Date();
    utimes(file, now, now).catch(() => undefined);
  }, LOCK_RENEW_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** A lock this process holds. */
export interface HeldLock {
  /** Stops renewing it and removes it, unless another run has taken it over meanwhile. */
  release(): Promise<void>;
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

/**
 * Tries once to take the lock in `file` (its directory must exist). A dead run's lock is moved aside first, by a rename
 * only one taker can win, and put back if what was moved turns out to be a live run's after all. Resolves with the
 * lock, or with its live holder. `graceMs`: how long a process of this host just killed is given to be gone.
 */
export async function tryLock(file: string, graceMs?: number): Promise<{ lock: HeldLock } | { holder: LockHolder }> {
  const me: LockHolder = { host: hostname(), pid: process.pid };
  for (;;) {
    try {
      await createWith(file, `${JSON.stringify(me)}\n`);
      const stop = renewLock(file);
      return {
        lock: {
          release: async () => {
            stop();
            const held = await readLock(file);
            if (held?.lock.host === me.host && held.lock.pid === me.pid) await rm(file, { force: true });
          },
        },
      };
    } catch (error) {
      if (!isCode(error, 'EEXIST')) throw error;
    }
    const held = await readLock(file);
    if (held === null) {
      // Unreadable (cut short by a crash, or made by something else): stale once it has not been renewed for long.
      const info = await stat(file).catch(() => null);
      if (info !== null && Date.now() - info.mtimeMs < LOCK_STALE_MS) return { holder: { host: 'unknown', pid: 0 } };
    } else {
      const holder = await liveLockHolder(file, graceMs);
      if (holder !== null) return { holder };
    }
    const aside = `${file}.stale-${randomUUID()}`;
    try {
      await rename(file, aside);
    } catch (error) {
      if (isCode(error, 'ENOENT')) continue;
      throw error;
    }
    const moved = await readLock(aside);
    if (moved !== null && held !== null && (moved.lock.host !== held.lock.host || moved.lock.pid !== held.lock.pid)) {
      // Another taker replaced the dead lock between our look and our move: put its lock back.
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
