import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AssembleCounts } from '../write/assemble-split.js';
import { assembleParts, type Assembled } from './assemble-parts.js';
import { CHECKPOINT_FILE } from './checkpoint.js';
import type { ConvertEvent, ConvertReport, PartFigures, SplitName, SplitReport } from './convert-report.js';
import { reportCard } from './dataset-card.js';
import { AccountingError, InputError, OutputError } from '../errors.js';
import { checkOutputDir, isOurOutput } from '../dirs/output-dir.js';
import { finishPublishing, outputIdentity, publishOutput } from '../dirs/publish-output.js';
import { liveHolder, openStaging, stagingDir, type Staging } from '../dirs/staging.js';
import { markedAs, removeMarkedDirectory, updateMarker, type ToolMarker } from '../dirs/tool-marker.js';
import { packageInfo } from '../util/package-info.js';
import { missingFile, parsePartName, partDir, partsDir, readPartManifest, type PartManifest } from './part-manifest.js';
import { joinRejectSegments, REJECTS_FILE } from '../write/rejects-file.js';
import { drain } from '../util/drain.js';

/** What `finalize` takes. */
export interface FinalizeOptions {
  /** The output the parts were converted for (`convert --output`). */
  output: string;
  /** Replace an existing output of this tool. Default false. */
  overwrite?: boolean;
  /** Stops the run; the parts stay as they are, for another finalize. */
  signal?: AbortSignal;
}

function list(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`;
}

/** The finished parts of `output`, checked to be all there, of one run, and to cover the input once. */
async function readParts(output: string): Promise<PartManifest[]> {
  const dir = partsDir(output);
  const names = await readdir(dir).catch(() => null);
  const found = (names ?? []).map((name) => ({ name, part: parsePartName(name) })).filter((entry) => entry.part !== null);
  if (found.length === 0) {
    throw new InputError(
      'ERR_NO_PARTS',
      `No part of a multi-machine run was found for ${output} (in ${dir}). Convert the parts first: rlaif-v convert ... --output ${output} ` +
        '--num-shards K --shard-index I (or rlaif-v slurm), then finalize.',
    );
  }
  const counts = [...new Set(found.map((entry) => entry.part?.count ?? 0))].sort((a, b) => a - b);
  if (counts.length > 1) {
    throw new InputError(
      'ERR_PARTS_MISMATCH',
      `${dir} holds parts of ${list(counts.map(String))} parts (${list(found.map((entry) => entry.name).sort())}): one run's parts must all have the same ` +
        '--num-shards. Remove the directories of the parts you do not want, then finalize again.',
    );
  }
  const count = counts[0] ?? 0;
  const manifests: PartManifest[] = [];
  const problems: string[] = [];
  for (let index = 0; index < count; index++) {
    const where = partDir(output, { index, count });
    if (!existsSync(where)) {
      problems.push(`part ${index} has not run, or stopped before its first checkpoint (see its log; run it)`);
      continue;
    }
    const manifest = await readPartManifest(where);
    if (manifest !== null) {
      const missing = await missingFile(where, manifest);
      if (missing === null) manifests.push(manifest);
      else problems.push(`part ${index}'s ${missing} is missing or not as it was written (run part ${index} again)`);
      continue;
    }
    const holder = await liveHolder(where);
    problems.push(
      holder === null
        ? `part ${index} stopped before it finished (run it again: it takes up its work)`
        : `part ${index} is still running (process ${holder.pid} on ${holder.host})`,
    );
  }
  if (problems.length > 0) {
    throw new InputError('ERR_PARTS_INCOMPLETE', `Not every part of ${count} is finished: ${problems.join('; ')}. Finalize once they all are.`);
  }
  const byFingerprint = new Map<string, number[]>();
  for (const manifest of manifests) byFingerprint.set(manifest.fingerprint, [...(byFingerprint.get(manifest.fingerprint) ?? []), manifest.part.index]);
  if (byFingerprint.size > 1) {
    const groups = [...byFingerprint].map(([fingerprint, parts]) => `part${parts.length > 1 ? 's' : ''} ${list(parts.map(String))} from ${fingerprint.slice(0, 12)}`);
    throw new InputError(
      'ERR_PARTS_MISMATCH',
      `The parts were not made from the same input and options (their fingerprints differ: ${list(groups)}). ` +
        'Run again, with the input and options of the others, the parts that differ.',
    );
  }
  let row = 0;
  for (const manifest of manifests) {
    if (manifest.part.firstRow !== row) {
      throw new InputError('ERR_PARTS_MISMATCH', `Part ${manifest.part.index} starts at row ${manifest.part.firstRow}, not ${row} where the part before it ended: run it again.`);
    }
    row = manifest.part.endRow;
  }
  const rows = manifests[0]?.report.input.rows ?? 0;
  if (row !== rows) throw new InputError('ERR_PARTS_MISMATCH', `The parts end at row ${row}, but the input has ${rows} rows: run the last part again.`);
  return manifests;
}

/**
 * Removes the parts' staging directory once the output is in place: its marker first says it is being discarded, so
 * that a finalize killed while removing it leaves nothing that looks like a run, and the next run on the output
 * finishes the removal (see finishPublishing).
 */
async function discard(root: string, marker: ToolMarker): Promise<void> {
  await updateMarker(root, marker, { state: 'discarding' });
  await removeMarkedDirectory(root);
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

/** What a finished multi-machine run reports: the one-machine report's figures, summed or taken over the parts. */
function finalReport(
  output: string,
  manifests: readonly PartManifest[],
  splits: Partial<Record<SplitName, SplitReport>>,
  bytesOut: number,
  finalize: { id: string; seconds: number; rows: AssembleCounts },
): ConvertReport {
  const reports = manifests.map((manifest) => manifest.report);
  const first = reports[0];
  if (first === undefined) throw new Error('no parts');
  const byCode: Record<string, number> = {};
  for (const report of reports) for (const [code, count] of Object.entries(report.rejected.byCode)) byCode[code] = (byCode[code] ?? 0) + count;
  const rejected = sum(reports.map((report) => report.rejected.rows));
  const fraction = rejected / first.input.rows;
  const round = (value: number): number => Math.round(value * 100) / 100;
  const parts: PartFigures[] = manifests.map(({ part, report }) => ({
    index: part.index,
    host: report.part?.host ?? '',
    firstRow: part.firstRow,
    endRow: part.endRow,
    rowsOut: report.output.rows,
    rowsRejected: report.rejected.rows,
    seconds: { total: report.seconds.total, plan: report.seconds.plan },
    cpu: report.cpu.process,
    ...(report.resume === undefined ? {} : { resume: report.resume }),
  }));
  const rowsOut = sum(Object.values(splits).map((split) => split.rows));
  return {
    tool: { name: packageInfo.name, version: packageInfo.version },
    ok: fraction <= first.options.maxRejectFraction,
    fingerprint: manifests[0]?.fingerprint ?? '',
    input: first.input,
    output: { dir: output, rows: rowsOut, bytes: bytesOut, splits },
    rejected: { rows: rejected, fraction, byCode: Object.fromEntries(Object.entries(byCode).sort(([a], [b]) => a.localeCompare(b))), file: rejected > 0 ? REJECTS_FILE : null },
    // Distinct images are counted per part: an image in two parts counts twice (and is not counted as repeated).
    images: {
      kept: sum(reports.map((report) => report.images.kept)),
      reencoded: sum(reports.map((report) => report.images.reencoded)),
      distinct: sum(reports.map((report) => report.images.distinct)),
      repeated: sum(reports.map((report) => report.images.repeated)),
      validated: sum(reports.map((report) => report.images.validated ?? 0)),
      fromCache: sum(reports.map((report) => report.images.fromCache ?? 0)),
      bytesIn: sum(reports.map((report) => report.images.bytesIn)),
    },
    seconds: {
      plan: Math.max(...reports.map((report) => report.seconds.plan)),
      convert: Math.max(...reports.map((report) => report.seconds.convert)),
      read: round(sum(reports.map((report) => report.seconds.read))),
      images: round(sum(reports.map((report) => report.seconds.images))),
      format: round(sum(reports.map((report) => report.seconds.format))),
      write: finalize.seconds,
      total: round(Math.max(...reports.map((report) => report.seconds.total)) + finalize.seconds),
    },
    cpu: { mainThreadBusy: 0, mainThread: null, process: round(sum(reports.map((report) => report.cpu.process))) },
    parts,
    finalize,
    options: first.options,
  };
}

/**
 * Finishes what a finalize killed at its end left (told as `leftover` events), and finds whether the output is
 * finalized already: its report when it is (the parts are gone, or the output was put together from these very
 * parts), else null.
 */
async function* finalizedBefore(output: string, root: string): AsyncGenerator<ConvertEvent, ConvertReport | null> {
  // What a finalize killed at its end left: an output half moved into place, an output it replaced, parts it was
  // removing. Each is this tool's by its marker.
  for (const leftover of await finishPublishing(output)) yield { type: 'leftover', leftover };
  const published = (await isOurOutput(output))
    ? await readFile(path.join(output, 'report.json'), 'utf8').then((text) => JSON.parse(text) as ConvertReport, () => null)
    : null;
  const rootMarker = await markedAs(root, 'staging');
  if (published?.parts !== undefined && !existsSync(partsDir(output))) return published;
  // Killed between publishing and clearing up: the output was put together from these very parts (the id finalize
  // wrote on their directory before publishing is the one its report carries), not merely from the same input.
  if (rootMarker?.finalizing !== undefined && published?.finalize?.id === rootMarker.finalizing) {
    await discard(root, rootMarker);
    return published;
  }
  return null;
}

/**
 * Writes the rest of the output beside its shards in `final`: the parts' rejects joined in order, the dataset card and
 * report.json. Returns the report, which carries finalize's `id`.
 *
 * @throws {AccountingError} when the rows out and rejected over the parts do not add up to the rows in.
 */
async function writeFinalFiles(
  output: string,
  final: string,
  manifests: readonly PartManifest[],
  { splits, counts }: Assembled,
  finalize: { id: string; started: number },
): Promise<ConvertReport> {
  await joinRejectSegments(
    manifests.flatMap((manifest) => manifest.rejects.map((segment) => path.join(partDir(output, manifest.part), segment.file))),
    path.join(final, REJECTS_FILE),
  );
  const rowsIn = manifests[0]?.report.input.rows ?? 0;
  const rowsOut = sum(Object.values(splits).map((split) => split.rows));
  const rowsRejected = sum(manifests.map((manifest) => manifest.report.rejected.rows));
  if (rowsOut + rowsRejected !== rowsIn) {
    throw new AccountingError(`Rows in (${rowsIn}) do not equal rows out (${rowsOut}) plus rows rejected (${rowsRejected}) over the parts. This is a bug; the output was not written.`);
  }
  const bytesOut = sum(Object.values(splits).map((split) => sum(split.files.map((file) => file.size))));
  const seconds = Math.round((performance.now() - finalize.started) / 10) / 100;
  const report = finalReport(output, manifests, splits, bytesOut, { id: finalize.id, seconds, rows: counts });
  await writeFile(path.join(final, 'README.md'), reportCard(report));
  await writeFile(path.join(final, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

/**
 * Puts the parts of a multi-machine run (`convert --num-shards K --shard-index I`, each into `<output>.partial/parts/`)
 * together into the output a one-machine `convert` with the same options writes, byte for byte: the shards (pieces
 * that are whole shards taken by hard link, row groups that land where they belong copied as they are, only the rows
 * around each part's ends encoded again), the rejects, the dataset card and report.json (with each part's figures).
 * Yields progress events; the last, `done`, carries the report.
 *
 * @throws {InputError} (exit 2) before any work when a part is missing, unfinished or still running
 * (`ERR_PARTS_INCOMPLETE`), when the parts are not of one run (`ERR_PARTS_MISMATCH`: other input or options, or another
 * `--num-shards`), or when there are none (`ERR_NO_PARTS`); {@link OutputError} as `convert` for the output.
 */
export async function* finalizeIter(options: FinalizeOptions): AsyncGenerator<ConvertEvent, ConvertReport> {
  const started = performance.now();
  const output = path.resolve(options.output);
  const root = stagingDir(output);
  const published = yield* finalizedBefore(output, root);
  if (published !== null) {
    yield { type: 'done', report: published };
    return published;
  }
  const manifests = await readParts(output);
  if (manifests[0] === undefined) throw new Error('no parts');
  await checkOutputDir(output, { overwrite: options.overwrite ?? false, inputs: [] });
  const approved = await outputIdentity(output);
  if (existsSync(path.join(root, CHECKPOINT_FILE))) {
    throw new OutputError('ERR_OUTPUT_BUSY', `${root} also holds an interrupted one-machine run of this output; remove its checkpoint.json and data/ to finalize the parts.`);
  }
  const staging = await openStaging(root, 'staging', output);
  const final = path.join(root, 'final');
  let done = false;
  /** Set once the finished output is being moved into place: a failure then leaves it where it is, for the next run. */
  let publishing = false;
  let finalDir: Staging | null = null;
  try {
    // What a killed finalize had put together is made again.
    if ((await markedAs(final, 'final')) !== null) await removeMarkedDirectory(final);
    finalDir = await openStaging(final, 'final', output);
    const assembled = yield* assembleParts({ output, manifests, final, signal: options.signal });
    const id = randomUUID();
    const report = await writeFinalFiles(output, final, manifests, assembled, { id, started });
    options.signal?.throwIfAborted();
    await staging.verify();
    const marker = await updateMarker(root, staging.marker, { finalizing: id });
    publishing = true;
    await publishOutput(finalDir, output, approved);
    done = true;
    await staging.release();
    await discard(root, marker);
    yield { type: 'done', report };
    return report;
  } finally {
    if (!done) {
      await finalDir?.release().catch(() => undefined);
      if (finalDir !== null && !publishing) await removeMarkedDirectory(final).catch(() => undefined);
      await staging.release().catch(() => undefined);
    }
  }
}

/**
 * Puts the parts of a multi-machine run together and resolves with the report once the output is in place. See
 * {@link finalizeIter}.
 */
export async function finalize(options: FinalizeOptions): Promise<ConvertReport> {
  return drain(finalizeIter(options));
}
