import { stat } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { hubSettings, type HubSettings } from '../hub/hub-settings.js';
import { pushIter, type PushReport } from '../hub/push-dataset.js';
import { interruptible, progressRenderer } from './process.js';
import { pushSummary } from './render-push.js';

/** Uploads a dataset directory, drawing progress; resolves with the report. */
export async function runPush(dir: string, repoId: string, isPrivate: boolean, settings: HubSettings, quiet: boolean, signal: AbortSignal): Promise<PushReport> {
  const renderer = progressRenderer(quiet);
  let report: PushReport | undefined;
  for await (const event of pushIter({ dir, repoId, private: isPrivate, settings, signal })) {
    renderer?.render(event);
    if (event.type === 'pushed') report = event.report;
  }
  if (report === undefined) throw new Error('the push ended without a report');
  if (!quiet) {
    process.stderr.write(`${pushSummary(report)}\n`);
  }
  return report;
}

/** What `push` reads of its options (yargs' argv). */
export interface PushCommandArgv {
  dir: string;
  repoId: string;
  private: boolean;
  token: string | undefined;
  quiet: boolean;
  json: boolean;
}

/** `push <dir>`: an output directory pushed to the Hub, its report printed as JSON when asked. */
export async function pushCommand(argv: PushCommandArgv): Promise<void> {
  if ((await stat(argv.dir).catch(() => null))?.isDirectory() !== true) {
    throw new InputError('ERR_INPUT_MISSING', `${argv.dir}: no such directory. Give the output directory of rlaif-v convert (or finalize).`, { file: argv.dir });
  }
  const settings = await hubSettings({ token: argv.token });
  const report = await runPush(argv.dir, argv.repoId, argv.private, settings, argv.quiet, interruptible().signal);
  if (argv.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}
