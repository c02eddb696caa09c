import { spawn } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface MeasuredRun {
  code: number | null;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
  /** Peak resident memory of the process, worker threads included (VmHWM), in bytes; 0 where /proc is absent. */
  peakRss: number;
  stdout: string;
  stderr: string;
}

async function highWaterMark(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match === null ? 0 : Number(match[1]) * 1024;
}

/**
 * Runs a command and samples its peak RSS until it exits. VmHWM is the kernel's own high-water mark, so no peak is
 * missed between samples; worker threads share the process, so it is the whole pipeline's memory.
 */
export function measureProcess(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const sample = (): void => {
      if (child.pid !== undefined) void highWaterMark(child.pid).then((value) => (peak = Math.max(peak, value)));
    };
    const timer = setInterval(sample, 50);
    child.on('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code, seconds: (performance.now() - started) / 1000, peakRss: peak, stdout, stderr });
    });
  });
}

/** `measureProcess` for a Node script. */
export function measureNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<MeasuredRun> {
  return measureProcess(process.execPath, args, env);
}

export interface MeasuredTree extends MeasuredRun {
  /** CPU seconds of the process and every child it waited for (from /usr/bin/time); null without it. */
  user: number | null;
  system: number | null;
  /** Resident memory of the whole process tree (summed), sampled every `sampleMs`: [seconds since start, bytes]. */
  rss: [number, number][];
  /** The largest sum seen. */
  peakTreeRss: number;
}

async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const children: number[] = [];
  for (const task of tasks) {
    const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const child of text.trim().split(/\s+/)) if (child !== '') children.push(Number(child));
  }
  return children;
}

/** Resident bytes of a process and its descendants, summed (a forked worker's shared pages are counted twice). */
async function treeRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  let total = match === null ? 0 : Number(match[1]) * 1024;
  for (const child of await childrenOf(pid)) total += await treeRss(child);
  return total;
}

/**
 * Runs a command under `/usr/bin/time` (where present) for the CPU of the whole process tree and the peak of its
 * largest process, and samples the tree's resident memory every `sampleMs`: memory over time, for long runs.
 */
export async function measureTree(command: string, args: string[], env: NodeJS.ProcessEnv = {}, sampleMs = 1000): Promise<MeasuredTree> {
  // /usr/bin/time writes its figures into a folder made for this run (a new name): it alone is removed after.
  const timeDir = await mkdtemp(path.join(tmpdir(), 'rlaif-v-time-'));
  const timeFile = path.join(timeDir, 'time');
  const timed = await access('/usr/bin/time').then(
    () => true,
    () => false,
  );
  const started = performance.now();
  const child = spawn(timed ? '/usr/bin/time' : command, timed ? ['-f', '%U %S %M', '-o', timeFile, command, ...args] : args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const rss: [number, number][] = [];
  let peakTreeRss = 0;
  const timer = setInterval(() => {
    if (child.pid === undefined) return;
    void treeRss(child.pid).then((bytes) => {
      rss.push([Math.round((performance.now() - started) / 100) / 10, bytes]);
      peakTreeRss = Math.max(peakTreeRss, bytes);
    });
  }, sampleMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  }).finally(() => clearInterval(timer));
  const seconds = (performance.now() - started) / 1000;
  const timeText = timed ? await readFile(timeFile, 'utf8').catch(() => '') : '';
  await rm(timeDir, { recursive: true, force: true });
  let user: number | null = null;
  let system: number | null = null;
  let peakRss = 0;
  if (timed) {
    const fields = timeText.trim().split('\n').at(-1)?.split(' ') ?? [];
    if (fields.length === 3) {
      user = Number(fields[0]);
      system = Number(fields[1]);
      peakRss = Number(fields[2]) * 1024;
    }
  }
  return { code, seconds, peakRss, stdout, stderr, user, system, rss: rss.sort((a, b) => a[0] - b[0]), peakTreeRss };
}
