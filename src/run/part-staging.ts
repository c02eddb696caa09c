import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { CHECKPOINT_FILE } from './checkpoint.js';
import { OutputError } from '../errors.js';
import { liveHolder, stagingDir } from '../dirs/staging.js';
import { missingFile, partsDir, readPartManifest, type PartManifest } from './part-manifest.js';

/**
 * What a run must know of the staging directory the parts of a run over several machines share, before it takes its
 * own: whether another run is at work there, and whether a part it is asked to convert was finished already.
 */

/**
 * Before a part takes its directory: the staging directory the parts share must not hold a one-machine run's work, nor
 * be held by a live run (a one-machine convert, or finalize).
 */
export async function checkPartsRoot(output: string): Promise<void> {
  const root = stagingDir(output);
  if (existsSync(path.join(root, CHECKPOINT_FILE))) {
    throw new OutputError(
      'ERR_OUTPUT_BUSY',
      `${root} holds an interrupted one-machine run of this output: take it up with the same convert command without ` +
        `--num-shards, or remove ${root} to convert in parts.`,
    );
  }
  const holder = await liveHolder(root);
  if (holder !== null) {
    throw new OutputError('ERR_OUTPUT_BUSY', `${root} is in use by another run (process ${holder.pid} on ${holder.host}), a one-machine convert or a finalize: wait for it to end.`);
  }
}

/**
 * Before a whole run takes `<output>.partial`: parts of a run over several machines there are never removed while one
 * of them runs, and otherwise only with --no-resume.
 */
export async function checkNoParts(output: string, resume: boolean): Promise<void> {
  const dir = partsDir(output);
  const names = await readdir(dir).catch(() => null);
  if (names === null) return;
  for (const name of names.sort()) {
    const holder = await liveHolder(path.join(dir, name));
    if (holder !== null) {
      throw new OutputError(
        'ERR_OUTPUT_BUSY',
        `Part ${name} of a run over several machines is being written in ${dir} (process ${holder.pid} on ${holder.host}): ` +
          `wait for the parts to end, then put them together with rlaif-v finalize ${output}.`,
      );
    }
  }
  if (resume) {
    throw new OutputError(
      'ERR_OUTPUT_HAS_PARTS',
      `${dir} holds the parts of a run over several machines (convert --num-shards): once they are all done, put them ` +
        `together with rlaif-v finalize ${output}; or pass --no-resume to start over on this machine, which removes them.`,
    );
  }
}

/** The manifest of a part an earlier run finished, when it is of this run (same fingerprint) and its files are there. */
export async function finishedPart(dir: string, fingerprint: string): Promise<PartManifest | null> {
  const manifest = await readPartManifest(dir);
  if (manifest === null || manifest.fingerprint !== fingerprint) return null;
  return (await missingFile(dir, manifest)) === null ? manifest : null;
}

/** Why a part an earlier run finished (its manifest is there) cannot be kept, or null when there is none. */
export async function finishedPartProblem(dir: string, fingerprint: string): Promise<string | null> {
  const manifest = await readPartManifest(dir);
  if (manifest === null) return null;
  if (manifest.fingerprint !== fingerprint) return 'it was converting other input or with other options (its fingerprint differs)';
  const missing = await missingFile(dir, manifest);
  return missing === null ? null : `its ${missing} is missing or not as it was written`;
}
