import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

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
