#!/usr/bin/env node
/**
 * The `rlaif-v` executable. On Linux (glibc) it runs the CLI in a child process with MALLOC_ARENA_MAX=2 unless the
 * variable is already set: every worker and libvips thread otherwise gets a malloc arena of its own, and a 1 GB
 * conversion peaked at 625-653 MB instead of 511-574 MB (sharp's documentation gives the same advice). The variable
 * must be set before the process starts, hence the child.
 *
 * It also raises V8's interrupt budget (how much a function runs before the optimizing compiler looks at it) from
 * 66 KB to 1 MB of bytecode: a conversion runs four isolates (main, two workers, the writer), and the compiler was
 * optimizing a great deal of code that runs only a little. Measured on the bench sample twice over (4,000 rows,
 * --num-proc 2), six runs each way taken in turn: 10-25% less CPU; the hot loops are still optimized at once.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { CLI_BUNDLE } from './util/paths.js';

// The CLI bundled into one file (bin.js itself is not bundled: it loads only node's modules and the paths).
const cli = CLI_BUNDLE;
const V8_FLAGS = ['--interrupt-budget=1000000'];

if (process.platform === 'linux' && process.env.MALLOC_ARENA_MAX === undefined) {
  const child = spawn(process.execPath, [...V8_FLAGS, ...process.execArgv, cli, ...process.argv.slice(2)], {
    // The IPC channel is only a lifeline: when this process dies, even by SIGKILL, the child sees it close and stops
    // (see cli/process.ts) instead of running on unseen, still uploading or writing.
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, MALLOC_ARENA_MAX: '2' },
  });
  // Ctrl-C reaches the child from the terminal itself; a TERM or HUP sent to this process alone is passed on.
  process.on('SIGINT', () => undefined);
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  // A child ended by a signal exits as a shell reports it: 128 + the signal's number (137 when killed, as by the
  // OOM killer; 134 for V8's abort when out of memory).
  child.on('exit', (code, signal) => {
    process.exit(code ?? 128 + (signal === null ? 15 : constants.signals[signal]));
  });
} else {
  // Set before any other module loads, so every function and every worker isolate made afterwards has the budget.
  for (const flag of V8_FLAGS) if (!process.execArgv.some((arg) => arg.startsWith(flag.split('=')[0] ?? flag))) setFlagsFromString(flag);
  await import(pathToFileURL(cli).href);
}
