import sharp from 'sharp'; // loaded in the main thread first, as sharp advises for use from worker threads on glibc
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConvertOptions } from '../options/convert-options.js';
import { OutputError } from '../errors.js';
import type { InputPlan } from '../plan/inspect-input.js';
import type { PartRange } from '../plan/plan-units.js';
import type { ConvertEvent, ConvertReport, SplitName } from './convert-report.js';
import type { Planned } from './plan-conversion.js';
import { BytesInFlight } from './bytes-in-flight.js';
import { RejectsFile } from '../write/rejects-file.js';
import { openImageStore } from '../image/open-image-store.js';
import { rowNbytes, toConversational } from '../output/to-conversational.js';
import { imageFilesDigest, runFingerprint } from '../plan/run-fingerprint.js';
import { makeDirectory, openStaging, ownDirectory, stagingDir, type Staging } from '../dirs/staging.js';
import { partDir, partsDir } from './part-manifest.js';
import { checkNoParts, checkPartsRoot, finishedPart, finishedPartProblem } from './part-staging.js';
import { clearStaging, findCheckpoint, rowsToRead, type Checkpoint } from './checkpoint.js';
import { outputArrowSchemaValue } from '../output/output-schema.js';
import { WriterThread } from '../write/writer-thread.js';
import type { SplitWriterOptions } from '../write/split-writer.js';
import { Tally, type ConvertPool, type Run } from './run.js';

/**
 * The start of a run, once its input is planned: the staging directory taken (or the run found finished already), the
 * checkpoint of an interrupted run taken up, the writers and sinks opened.
 */

/** Per-row bytes every output row has besides its texts and image: roles, part types, list and string offsets. */
const ROW_OVERHEAD = rowNbytes(toConversational('', '', '', { bytes: new Uint8Array(0), path: null }));

/**
 * A split's writer, with its shards planned from the input's footers: the uncompressed bytes of the columns the output
 * keeps, shared out by rows, plus each row's fixed overhead.
 */
function splitWriter(name: SplitName, rows: number, plan: InputPlan, options: ResolvedConvertOptions, dir: string, start: number | undefined): SplitWriterOptions {
  const estimatedNbytes = Math.round((plan.outputBytes * rows) / plan.rows) + rows * ROW_OVERHEAD;
  return {
    ...(start === undefined ? {} : { start }),
    split: name,
    dir,
    plannedRows: rows,
    estimatedNbytes,
    maxShardSize: options.maxShardSize,
    rowGroupSize: options.rowGroupSize,
    arrowSchema: outputArrowSchemaValue(),
  };
}

/**
 * A part's directory, `<output>.partial/parts/I-of-K/`, taken for this run: the staging directory the parts share is
 * made (marked as this tool's, for `output`) or must be one this tool made so.
 */
async function openPartStaging(output: string, part: { index: number; count: number }): Promise<Staging> {
  await makeDirectory(path.dirname(output), 'the output');
  await ownDirectory(stagingDir(output), 'staging', { output: path.basename(output), what: `the staging directory of ${output}` });
  await makeDirectory(partsDir(output), 'the output');
  return openStaging(partDir(output, part), 'part');
}

/**
 * The report of the output a run killed as it published put in place just now (see Planned.restored), when it is the
 * one this run would make: this run is done.
 *
 * @throws {OutputError} `ERR_OUTPUT_EXISTS` when it is another: an output like any other, replaced only with overwrite.
 */
async function restoredReport(output: string, fingerprint: string, part: PartRange | null): Promise<ConvertReport> {
  const finished = await readFile(path.join(output, 'report.json'), 'utf8').then((text) => JSON.parse(text) as ConvertReport, () => null);
  if (finished?.fingerprint !== fingerprint || part !== null) {
    throw new OutputError('ERR_OUTPUT_EXISTS', `${output} already exists. Replace it with the overwrite option (--overwrite), or choose another output.`);
  }
  return finished;
}

/**
 * The directory this run writes in, held: the staging directory of a whole run, or a part's. No part may be under way
 * beside a whole run, nor a whole run beside parts (see checkPartsRoot, checkNoParts).
 */
async function holdStaging(output: string, part: PartRange | null, resume: boolean): Promise<Staging> {
  if (part !== null) await checkPartsRoot(output);
  else await checkNoParts(output, resume);
  const staging = part === null ? await openStaging(stagingDir(output), 'staging', output) : await openPartStaging(output, part);
  // Checked again now that this run holds its directory: a part (or a whole run) may have started meanwhile.
  try {
    if (part !== null) await checkPartsRoot(output);
    else await checkNoParts(output, resume);
  } catch (error) {
    await staging.release();
    throw error;
  }
  return staging;
}

/** What a run takes up from the staging directory it holds: a checkpoint or none, and the input rows left to read. */
interface TakenUp {
  resumed: Checkpoint | null;
  resumeNote: ConvertReport['resume'];
  toRead: [number, number][];
}

/**
 * What a run finds in the staging directory it adopted from a dead run: a part finished already (its report; the
 * directory is let go), or the checkpoint it takes up (none when resume is off, or why none can be) and the rows it
 * still has to read. Tells which in a `part-finished` or `resume` event.
 */
async function* takeUp(staging: Staging, planned: Planned, range: { firstRow: number; endRow: number }, fingerprint: string, resume: boolean): AsyncGenerator<ConvertEvent, TakenUp | { finished: ConvertReport }> {
  const finished = planned.part === null || !resume ? null : await finishedPart(staging.dir, fingerprint);
  if (finished !== null) {
    await staging.release();
    yield { type: 'part-finished', staging: staging.dir };
    return { finished: finished.report };
  }
  const found = resume ? await findCheckpoint(staging.dir, fingerprint, await finishedPartProblem(staging.dir, fingerprint)) : { checkpoint: null, reason: 'resume is off (--no-resume)' };
  const toRead = rowsToRead(found.checkpoint, planned.split, [range.firstRow, range.endRow]);
  const rowsReused = range.endRow - range.firstRow - toRead.reduce((sum, [start, end]) => sum + end - start, 0);
  const resumeNote: ConvertReport['resume'] = found.checkpoint === null ? { resumed: false, reason: found.reason } : { resumed: true, rowsReused };
  yield found.checkpoint === null
    ? { type: 'resume', resumed: false, staging: staging.dir, reason: found.reason }
    : { type: 'resume', resumed: true, staging: staging.dir, rowsReused };
  return { resumed: found.checkpoint, resumeNote, toRead };
}

/**
 * Opens a planned run: takes its staging directory (a part's, for a part), takes up the checkpoint an interrupted run
 * of the same command left there, and opens the writers, the rejects and the image store. Returns the run, or the
 * report of one found finished already: an output put in place by a run killed as it published, or a part finished.
 */
export async function* openRun(
  planned: Planned,
  options: ResolvedConvertOptions,
  signal: AbortSignal | undefined,
  pool: ConvertPool,
): AsyncGenerator<ConvertEvent, { run: Run } | { finished: ConvertReport }> {
  const { plan, split, output, part } = planned;
  const fingerprint = runFingerprint(plan, options, await imageFilesDigest(plan));
  // The output a run killed as it published was put in place just now: when it is the one this run would make, this
  // run is done; otherwise it is an output like any other, replaced only with overwrite.
  if (planned.restored && !options.overwrite) return { finished: await restoredReport(output, fingerprint, part) };
  const range = part ?? { firstRow: 0, endRow: plan.rows };
  const staging = await holdStaging(output, part, options.resume);
  // Until the run is handed over (or found finished), a failure here lets go of what it holds: the lock (a caller
  // in the same process could not take the output again while this process lives) and the writer thread. The
  // staging directory stays as it is.
  let handedOver = false;
  let writers: WriterThread | null = null;
  try {
    let takenUp: TakenUp = { resumed: null, resumeNote: undefined, toRead: [[range.firstRow, range.endRow]] };
    if (staging.adopted) {
      const found = yield* takeUp(staging, planned, range, fingerprint, options.resume);
      if ('finished' in found) {
        handedOver = true;
        return found;
      }
      takenUp = found;
    }
    const { resumed, resumeNote, toRead } = takenUp;
    await clearStaging(staging.dir, resumed);
    await makeDirectory(path.join(staging.dir, 'data'), 'the output');
    // A part's rows of each split start where its rows before the part end, were none of them rejected.
    const testBefore = split.testMask.subarray(0, range.firstRow).reduce((sum, bit) => sum + bit, 0);
    // A split the run taken up had finished needs no writer.
    const finished = resumed?.finished ?? {};
    const writerOptions = {
      train: splitWriter('train', split.trainRows, plan, options, staging.dir, part === null ? undefined : range.firstRow - testBefore),
      test: splitWriter('test', split.testRows, plan, options, staging.dir, part === null ? undefined : testBefore),
    };
    // The image store first: a cache that cannot be opened then starts no writer thread.
    const store = options.cache === null ? null : (await openImageStore(options.cache.dir, options.image, { ...sharp.versions })).settings;
    const opened = new WriterThread(Object.fromEntries(Object.entries(writerOptions).filter(([name]) => finished[name] === undefined)), resumed?.splits);
    writers = opened;
    const run: Run = {
      ...planned,
      options,
      signal,
      pool,
      writers: opened,
      memory: new BytesInFlight(options.maxBytesInFlight, () => opened.bytes),
      lock: staging,
      rejects: new RejectsFile(staging.dir, resumed?.rejects),
      tally: new Tally(),
      staging: staging.dir,
      fingerprint,
      resumed,
      lastCheckpoint: resumed,
      finished: { ...finished },
      resumeNote,
      toRead,
      range,
      store,
    };
    handedOver = true;
    return { run };
  } finally {
    if (!handedOver) {
      await writers?.close().catch(() => undefined);
      await staging.release().catch(() => undefined);
    }
  }
}
