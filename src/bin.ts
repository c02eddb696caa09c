#!/usr/bin/env node
/**
 * The `rlaif-v` executable. On Linux (glibc) it runs the CLI in a child process with MALLOC_ARENA_MAX=2 unless the
 * variable is already set: every worker and libvips thread otherwise gets a malloc arena of its own, and a 1 GB
 * conversion peaked at 625-653 MB instead of 511-574 MB (sharp's documentation gives the same advice). The variable
 * must be set before the process starts, hence the child.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('./cli.js', import.meta.url));

if (process.platform === 'linux' && process.env.MALLOC_ARENA_MAX === undefined) {
  const child = spawn(process.execPath, [...process.execArgv, cli, ...process.argv.slice(2)], {
    // The IPC channel is only a lifeline: when this process dies, even by SIGKILL, the child sees it close and stops
    // (see cli.ts) instead of running on unseen, still uploading or writing.
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, MALLOC_ARENA_MAX: '2' },
  });
  // Ctrl-C reaches the child from the terminal itself; a TERM or HUP sent to this process alone is passed on.
  process.on('SIGINT', () => undefined);
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    process.exit(code ?? (signal === 'SIGINT' ? 130 : 143));
  });
} else {
  await import('./cli.js');
}
