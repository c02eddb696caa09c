import { open, readFile, rm, stat, utimes } from 'node:fs/promises';
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

/**
 * Takes the lock in `file` (its directory must exist), waiting while a live run holds it (another of this process's
 * calls included) and taking over a dead run's. Resolves with the function that releases it.
 */
export async function acquireLock(file: string, options: { signal?: AbortSignal | undefined; pollMs?: number } = {}): Promise<() => Promise<void>> {
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const handle = await open(file, 'wx');
      try {
        await handle.writeFile(`${JSON.stringify({ host: hostname(), pid: process.pid } satisfies LockHolder)}\n`);
      } finally {
        await handle.close();
      }
      const stop = renewLock(file);
      return async () => {
        stop();
        await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const held = await readLock(file);
    // Same process: another call of ours holds it, and will let go.
    const ours = held?.lock.host === hostname() && held.lock.pid === process.pid;
    if (held !== null && !ours && (await liveLockHolder(file, 0)) === null) {
      await rm(file, { force: true });
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}
