import path from 'node:path';
import { convertIter, type ConvertRunOptions } from '../run/convert.js';
import type { ConvertReport } from '../run/convert-report.js';
import { finalizeIter } from '../run/finalize.js';
import { partDir } from '../run/part-manifest.js';
import { stagingDir } from '../dirs/staging.js';
import { hubSettings, type HubSettings } from '../hub/hub-settings.js';
import { checkPushAccess } from '../hub/push-dataset.js';
import type { ImageMode } from '../image/image-policy.js';
import { partOf, type PushArgv } from './convert-flags.js';
import { interruptible, noteStaging, progressRenderer } from './process.js';
import { summarize } from './render-convert.js';
import { runPush } from './run-push.js';

/** What `convert` reads of its options (yargs' argv). */
export interface ConvertArgv extends PushArgv {
  input: string[] | undefined;
  dataset: string | undefined;
  revision: string | undefined;
  output: string;
  numProc: number | undefined;
  writerBatchSize: number;
  testSize: number;
  seed: number;
  images: string;
  quality: number | undefined;
  maxSide: number | undefined;
  maxPixels: number;
  maxShardSize: string;
  maxRejectFraction: number;
  maxRowGroupBytes: string;
  maxBytesInFlight: string | undefined;
  imageTimeout: number;
  onBadImage: string;
  overwrite: boolean;
  resume: boolean;
  checkpointEvery: string;
  numShards: number | undefined;
  shardIndex: number | undefined;
  columns: string | undefined;
  cache: boolean;
  cacheSize: string;
}

/** `convert`: the run with its progress drawn, then its report, and the push when asked. */
export async function runConvert(argv: ConvertArgv): Promise<void> {
  const part = partOf(argv);
  const controller = interruptible();
  noteStaging('numShards' in part ? partDir(path.resolve(argv.output), { index: part.shardIndex, count: part.numShards }) : stagingDir(path.resolve(argv.output)));
  const local = argv.input !== undefined && argv.input.length > 0;
  // Local input without a push never touches the Hub, nor reads its token.
  const settings = local && !argv.pushToHub ? undefined : await hubSettings({ token: argv.token });
  // A push at the end needs a token the Hub accepts: find out now, not after hours of conversion.
  const renderer = progressRenderer(argv.quiet);
  if (argv.pushToHub && settings !== undefined) {
    await checkPushAccess(settings, argv.repoId, { signal: controller.signal, onRetry: (retry) => renderer?.render({ type: 'retry', retry }) });
  }
  let report: ConvertReport | undefined;
  for await (const event of convertIter({ ...convertOptions(argv, settings), ...part, signal: controller.signal })) {
    renderer?.render(event);
    if (event.type === 'done') report = event.report;
  }
  if (report === undefined) return;
  await reportAndPush(report, argv, settings, controller.signal);
}

/** The library's options of a conversion, from the flags of `convert` (but its part and its signal). */
function convertOptions(argv: ConvertArgv, settings: HubSettings | undefined): ConvertRunOptions {
  const local = argv.input !== undefined && argv.input.length > 0;
  return {
    // --revision with --input is passed on, for the library to refuse: it would do nothing.
    ...(local ? { input: argv.input, ...(argv.revision === undefined ? {} : { revision: argv.revision }) } : { dataset: argv.dataset, revision: argv.revision }),
    ...(settings === undefined ? {} : { hub: settings }),
    output: argv.output,
    numProc: argv.numProc,
    writerBatchSize: argv.writerBatchSize,
    testSize: argv.testSize,
    seed: argv.seed,
    images: argv.images as ImageMode,
    ...(argv.quality === undefined ? {} : { quality: argv.quality }),
    maxSide: argv.maxSide ?? null,
    maxPixels: argv.maxPixels,
    maxShardSize: argv.maxShardSize,
    maxRejectFraction: argv.maxRejectFraction,
    maxRowGroupBytes: argv.maxRowGroupBytes,
    ...(argv.maxBytesInFlight === undefined ? {} : { maxBytesInFlight: argv.maxBytesInFlight }),
    imageTimeout: argv.imageTimeout,
    onBadImage: argv.onBadImage as 'skip' | 'fail',
    overwrite: argv.overwrite,
    resume: argv.resume,
    checkpointEvery: argv.checkpointEvery,
    ...(argv.columns === undefined ? {} : { columns: argv.columns }),
    cache: argv.cache,
    cacheSize: argv.cacheSize,
  };
}

/** Prints a finished run's report, fails on too many rejected rows, and pushes when asked. */
async function reportAndPush(
  report: ConvertReport,
  argv: Omit<PushArgv, 'token'>,
  settings: HubSettings | undefined,
  signal: AbortSignal,
): Promise<void> {
  if (argv.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!argv.quiet) process.stderr.write(`${summarize(report)}\n`);
  // A part's rejected rows are judged with every other part's, by finalize.
  if (report.part !== undefined) return;
  if (!report.ok) {
    process.stderr.write(
      `rlaif-v: ${(report.rejected.fraction * 100).toFixed(2)}% of rows were rejected, over --max-reject-fraction ` +
        `${report.options.maxRejectFraction}. The output is complete without them; see ${report.rejected.file ?? 'rejects/'} for why.\n`,
    );
    process.exitCode = 1;
    if (argv.pushToHub) process.stderr.write('rlaif-v: not pushed, because of the rejected rows. Check them, then run `rlaif-v push` if the output is fine.\n');
    return;
  }
  if (argv.pushToHub && settings !== undefined) await runPush(report.output.dir, argv.repoId, argv.private, settings, argv.quiet, signal);
}

/** What `finalize` reads of its options (yargs' argv). */
export interface FinalizeArgv extends PushArgv {
  output: string;
  overwrite: boolean;
}

/** `finalize`: the parts of a multi-machine run put together, then pushed when asked. */
export async function runFinalize(argv: FinalizeArgv): Promise<void> {
  const controller = interruptible();
  const settings = argv.pushToHub ? await hubSettings({ token: argv.token }) : undefined;
  const renderer = progressRenderer(argv.quiet);
  if (settings !== undefined) {
    await checkPushAccess(settings, argv.repoId, { signal: controller.signal, onRetry: (retry) => renderer?.render({ type: 'retry', retry }) });
  }
  let report: ConvertReport | undefined;
  for await (const event of finalizeIter({ output: argv.output, overwrite: argv.overwrite, signal: controller.signal })) {
    renderer?.render(event);
    if (event.type === 'done') report = event.report;
  }
  if (report !== undefined) await reportAndPush(report, argv, settings, controller.signal);
}
