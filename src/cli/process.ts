import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { CHECKPOINT_FILE } from '../run/checkpoint.js';
import { RlaifError } from '../errors.js';
import { ProgressRenderer } from './render-progress.js';

/**
 * The process around the commands: its signals, its standard streams, the progress line it draws, and how it ends.
 * The only module that exits.
 */

/** Exit codes: 0 done, 1 failed (or too many rows rejected), 2 bad input or usage. */
const EXIT_USAGE = 2;

/**
 * Sets the process up before a command runs: a closed pipe on stdout or stderr does not stop the work, and a parent
 * that dies stops it.
 */
export function watchProcess(): void {
  // A reader that goes away (`rlaif-v convert ... 2>&1 | head -1`) must not stop the work, which is the dataset on disk,
  // not these lines: once a stream's pipe is closed, what would go to it is dropped and the run goes on to its end.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }

  // Started by bin.js with a lifeline: if that parent dies (even by SIGKILL), stop as if told to.
  if (process.channel !== undefined) {
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
}

/** The signal that stopped the run, for its exit code. */
let stoppedBy: 'SIGINT' | 'SIGTERM' | 'SIGHUP' | null = null;

/** An abort controller that SIGINT, SIGTERM or SIGHUP aborts, the first of them kept for the exit code. */
export function interruptible(): AbortController {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      stoppedBy ??= signal;
      controller.abort();
    });
  }
  return controller;
}

/** The staging directory of the conversion under way, if any: what an interrupted run may leave to be taken up. */
let convertStaging: string | null = null;

/** Names the staging directory of the conversion under way, for the message of a run stopped by a signal. */
export function noteStaging(dir: string): void {
  convertStaging = dir;
}

/** The progress line being drawn, if any: taken away before a message is written, so the message starts its own line. */
let activeRenderer: ProgressRenderer | null = null;

/** A renderer of progress on stderr (none when `quiet`), in place of the one before it. */
export function progressRenderer(quiet: boolean): ProgressRenderer | null {
  activeRenderer?.close();
  activeRenderer = quiet ? null : new ProgressRenderer({ stream: process.stderr });
  return activeRenderer;
}

/**
 * `numProc` -> `--num-proc`: the library's option errors name the flag the user typed, not the library's option, and
 * say nothing of JavaScript types.
 */
function asFlags(message: string): string {
  const flag = (name: string): string => `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
  return message
    .replace(/^([a-z][A-Za-z]*) applies to ([a-z][A-Za-z]*)\b/, (_match, name: string, other: string) => `${flag(name)} applies to ${flag(other)}`)
    .replace(/\bfor ([a-z]+[A-Z]\w*|[a-z]+) but received/, (_match, name: string) => {
      return `for --${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} but received`;
    })
    .replace(/ of type \w+$/, '');
}

/** Ends the process on a command's error: its message and exit code, a stopped run's signal, or a stack for a bug. */
function fail(error: unknown): never {
  activeRenderer?.close();
  if (error instanceof RlaifError) {
    process.stderr.write(`rlaif-v: ${error.code === 'ERR_INVALID_OPTION' ? asFlags(error.message) : error.message}\n`);
    process.exit(error.exitCode);
  }
  if (error instanceof Error && error.name === 'AbortError') {
    const signal = stoppedBy ?? 'SIGINT';
    const stopped = signal === 'SIGINT' ? 'interrupted' : `stopped by ${signal}`;
    const kept = convertStaging !== null && existsSync(path.join(convertStaging, CHECKPOINT_FILE));
    process.stderr.write(
      kept
        ? `rlaif-v: ${stopped}. The work done up to the last checkpoint is kept in ${convertStaging}: run the same command ` +
            'again to take it up from there (--no-resume to start over).\n'
        : `rlaif-v: ${stopped}. Nothing half-written is left behind; ` +
            'run the same command again (downloads resume from the cache, a push where it stopped).\n',
    );
    // The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
    process.exit(128 + constants.signals[signal]);
  }
  process.stderr.write(`rlaif-v: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}

/**
 * yargs' `fail` handler: a usage error (exit 2, with a pointer to --help), or a command's error passed to
 * {@link fail}.
 */
export function failUsage(message: string, error: Error | undefined): never {
  // An option's reader threw (yargs wraps what a coerce throws): a usage error like any other.
  if (error?.name === 'YError') message = error.message;
  else if (error !== undefined && error !== null) fail(error);
  message = message.replace(/^Not enough arguments following: (\S+)$/, (_match, flag: string) => `--${flag} needs a value`);
  process.stderr.write(`rlaif-v: ${message}\nRun 'rlaif-v --help' for usage.\n`);
  process.exit(EXIT_USAGE);
}
