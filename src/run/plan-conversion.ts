import path from 'node:path';
import { openAsBlob } from 'node:fs';
import type { ResolvedConvertOptions } from '../options/convert-options.js';
import type { ConvertEvent } from './convert-report.js';
import { DatasetDownloads, type DownloadEvent } from '../hub/background-downloads.js';
import { remoteBlob, resolveDataset, type DatasetSource } from '../hub/resolve-dataset.js';
import { EventQueue } from '../util/event-queue.js';
import { hubSettings, withSignal, type HubSettings } from '../hub/hub-settings.js';
import { inspectInput, inspectSources, type InputPlan, type InputSource } from '../plan/inspect-input.js';
import { checkOutputDir } from '../dirs/output-dir.js';
import { type Leftover } from '../dirs/publish-output.js';
import { checkCacheDir } from '../image/image-store-dir.js';
import { planSplit, type SplitPlan } from '../plan/plan-split.js';
import { partRange, type PartRange } from '../plan/plan-units.js';
import { hubSourceCard, localSourceCard, type SourceCard } from '../hub/source-card.js';
import type { RetryEvent } from '../hub/retry-fetch.js';

/**
 * Planning a conversion, before any image is read: the input's footers (a Hub dataset resolved and its download
 * started first), the output directory checked (a run killed while publishing it finished), and the split.
 */

/** The dataset's files for planning: footers of cached files read from disk, of the others from the Hub. */
async function* hubSources(source: DatasetSource, settings: HubSettings, onRetry: (event: RetryEvent) => void): AsyncGenerator<InputSource> {
  for (const file of source.files) {
    const name = `${source.repo}/${file.path}`;
    const blob = file.cached ? await openAsBlob(file.blobPath) : await remoteBlob(source, file, settings, onRetry);
    // The snapshot's root: <cache>/datasets--org--name/snapshots/<commit>/, above the file's own folders.
    yield { name, path: file.localPath, blob, root: file.localPath.slice(0, file.localPath.length - file.path.length) };
  }
}

/** Which files hold rows of a part (by index in the plan). */
function filesOfPart(plan: InputPlan, part: { index: number; count: number } | null): (index: number) => boolean {
  if (part === null) return () => true;
  const { firstRow, endRow } = partRange(plan, part.count, part.index);
  return (index) => {
    const file = plan.files[index];
    return file !== undefined && file.firstRow < endRow && file.firstRow + file.rows > firstRow;
  };
}

/** What planning found: the input's plan, where it came from, the output directory and the split. */
export interface Planned {
  plan: InputPlan;
  source: DatasetSource | null;
  downloads: DatasetDownloads | null;
  output: string;
  split: SplitPlan;
  /** The rows this run converts when it is a part of a multi-machine run; null for the whole input. */
  part: PartRange | null;
  /** What the source's own dataset card says (licence, name, citation), or null when it has none that was found. */
  sourceCard: SourceCard | null;
  /** Where retries of Hub requests go, to be told at the next chance to yield (downloads go on while converting). */
  hubEvents: EventQueue<DownloadEvent>;
  /** Whether the output was put in place just now, finished by a run killed as it published it (see finishPublishing). */
  restored: boolean;
}

/** The output checked (see checkOutputDir), telling what a run killed while publishing it left and this one finished. */
async function* checkedOutput(output: string, overwrite: boolean, inputs: readonly string[], restored: { output: boolean }): AsyncGenerator<ConvertEvent, string> {
  const finished: Leftover[] = [];
  try {
    return await checkOutputDir(output, { overwrite, inputs, finish: (leftover) => finished.push(leftover), allowFinished: true });
  } finally {
    restored.output = finished.some((leftover) => leftover.action === 'restored');
    // Told even when the output is then refused (a finished output put in place exists, and is not replaced).
    for (const leftover of finished) yield { type: 'leftover', leftover };
  }
}

/** Reads the input's footers (resolving and starting the download of a Hub dataset first) and plans the split. */
export async function* planConversion(
  options: ResolvedConvertOptions,
  runOptions: { signal?: AbortSignal | undefined; hub?: HubSettings | undefined },
): AsyncGenerator<ConvertEvent, Planned> {
  const signal = runOptions.signal;
  const inspectOptions = { maxRowGroupBytes: options.maxRowGroupBytes, streamRowGroupBytes: options.streamRowGroupBytes, columns: options.columns };
  let downloads: DatasetDownloads | null = null;
  /** Retries of Hub requests, told as they happen. */
  const hubEvents = new EventQueue<DownloadEvent>();
  // Downloads go on in the background from when they start; on any way out but a finished plan, they stop.
  let planned = false;
  const restored = { output: false };
  try {
    let source: DatasetSource | null = null;
    let plan: InputPlan;
    let output: string;
    let sourceCard: SourceCard | null;
    if (options.dataset === null) {
      plan = await inspectInput(options.input, inspectOptions);
      sourceCard = await localSourceCard(options.input);
      for (const duplicate of plan.duplicates ?? []) yield { type: 'duplicate-input', duplicate };
      if (options.cache !== null) await checkCacheDir(options.cache.dir, options.input, path.resolve(options.output));
      output = yield* checkedOutput(options.output, options.overwrite, options.input, restored);
    } else {
      const settings = withSignal(runOptions.hub ?? (await hubSettings()), signal);
      // Checked before anything is downloaded; the cache is this run's input.
      if (options.cache !== null) await checkCacheDir(options.cache.dir, [settings.cacheDir], path.resolve(options.output));
      output = yield* checkedOutput(options.output, options.overwrite, [settings.cacheDir], restored);
      const onRetry = (retry: RetryEvent): void => void hubEvents.push({ type: 'retry', retry });
      source = yield* hubEvents.during(resolveDataset({ repo: options.dataset.repo, revision: options.dataset.revision, settings, onRetry }));
      const cached = source.files.filter((file) => file.cached);
      yield {
        type: 'source',
        repo: source.repo,
        revision: source.revision,
        commit: source.commit,
        files: source.files.length,
        cachedFiles: cached.length,
        bytes: source.files.reduce((sum, file) => sum + file.size, 0),
        cachedBytes: cached.reduce((sum, file) => sum + file.size, 0),
      };
      // A part downloads only the files its rows are in, known once the footers are read; a whole run starts at once.
      sourceCard = yield* hubEvents.during(hubSourceCard(source, settings, onRetry));
      const early = options.part === null ? new DatasetDownloads(source, settings, { signal, onRetry }) : null;
      downloads = early;
      plan = yield* hubEvents.during(inspectSources(hubSources(source, settings, onRetry), inspectOptions));
      const files = plan.files;
      const started = early ?? new DatasetDownloads(source, settings, { signal, onRetry, wanted: filesOfPart(plan, options.part) });
      downloads = started;
      plan.ready = (file) => started.ready(files.indexOf(file));
    }
    const split = planSplit(plan.rows, options.testSize, options.seed);
    const part = options.part === null ? null : partRange(plan, options.part.count, options.part.index);
    planned = true;
    return { plan, source, downloads, output, split, part, sourceCard, hubEvents, restored: restored.output };
  } finally {
    if (!planned) downloads?.abort();
  }
}
