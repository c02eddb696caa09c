import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface MeasuredRun {
  code: number | null;
  seconds: number;
  /** Peak resident memory of the process (its worker threads included), from /proc VmHWM, in bytes. */
  peakRss: number;
  stderr: string;
}

async function highWaterMark(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match === null ? 0 : Number(match[1]) * 1024;
}

/**
 * Runs `node args…` and samples its peak RSS (VmHWM: the kernel's own high-water mark, so no peak is missed between
 * samples) until it exits. Worker threads share the process, so this is the whole pipeline's memory.
 */
export function measureNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let peak = 0;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setInterval(() => {
      if (child.pid !== undefined) void highWaterMark(child.pid).then((value) => (peak = Math.max(peak, value)));
    }, 50);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, seconds: (performance.now() - started) / 1000, peakRss: peak, stderr });
    });
  });
}
