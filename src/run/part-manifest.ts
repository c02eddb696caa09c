import { isInsideName } from '../dirs/tool-marker.js';
import { readFile, stat } from 'node:fs/promises';
import { replaceFile } from '../dirs/tool-file.js';
import path from 'node:path';
import type { ConvertReport } from './convert-report.js';
import { stagingDir } from '../dirs/staging.js';
import type { PartRange } from '../plan/plan-units.js';
import type { RejectSegment } from '../write/rejects-file.js';

/**
 * A finished part of a multi-machine run (`convert --num-shards K --shard-index I`): what `finalize` needs to put the
 * parts together into the output one machine would write, and to check they belong together. Written last, into the
 * part's directory, once every file it names is complete: a part without it is not finished.
 */
export interface PartManifest {
  version: 1;
  /** The run's fingerprint (input and the options that shape the data): parts of one output all have the same. */
  fingerprint: string;
  part: PartRange;
  /** Rows of each split of the whole input, before any is rejected: what the shards were planned for. */
  planned: { train: number; test: number };
  /** Its rejected rows, in order, in segment files relative to the part's directory. */
  rejects: RejectSegment[];
  /**
   * The part's own report: its files (pieces of the output's shards, in order, relative to the part's directory) per
   * split with their rows and bytes, its rejects, images, times and the options it ran with.
   */
  report: ConvertReport;
}

export const PART_FILE = 'part.json';

/** Where the parts of `output` are written: `<output>.partial/parts/`. */
export function partsDir(output: string): string {
  return path.join(stagingDir(output), 'parts');
}

/** The directory of part `index` of `count` of `output`: `<output>.partial/parts/<index>-of-<count>`. */
export function partDir(output: string, part: { index: number; count: number }): string {
  return path.join(partsDir(output), `${part.index}-of-${part.count}`);
}

/** The name of a part's directory, parsed: `2-of-3` → { index: 2, count: 3 }; null for any other name. */
export function parsePartName(name: string): { index: number; count: number } | null {
  const match = /^(\d+)-of-(\d+)$/.exec(name);
  if (match === null) return null;
  const [index, count] = [Number(match[1]), Number(match[2])];
  return index < count ? { index, count } : null;
}

/** Writes the manifest last and atomically (aside, then renamed): a crash leaves the part unfinished, never half-said. */
export async function writePartManifest(dir: string, manifest: PartManifest): Promise<void> {
  const file = path.join(dir, PART_FILE);
  await replaceFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
}

/** A part's manifest, or null when it has none (not finished) or it cannot be read. */
export async function readPartManifest(dir: string): Promise<PartManifest | null> {
  try {
    const manifest = JSON.parse(await readFile(path.join(dir, PART_FILE), 'utf8')) as PartManifest;
    if (manifest.version !== 1) return null;
    // Every file it names must lie in the part's directory: finalize links or copies them into the output.
    const names = [...manifestFiles(manifest).map((file) => file.file), ...manifest.rejects.map((segment) => segment.file)];
    return names.every(isInsideName) ? manifest : null;
  } catch {
    return null;
  }
}

/** Every file a manifest names, relative to its part's directory, with the size it was written with. */
export function manifestFiles(manifest: PartManifest): { file: string; size: number }[] {
  const files: { file: string; size: number }[] = [];
  for (const split of Object.values(manifest.report.output.splits)) for (const shard of split.files) files.push({ file: shard.file, size: shard.size });
  for (const segment of manifest.rejects) files.push({ file: segment.file, size: segment.size });
  return files;
}

/** The first file a manifest names that is missing or not of the size it was written with, or null when all are there. */
export async function missingFile(dir: string, manifest: PartManifest): Promise<string | null> {
  for (const { file, size } of manifestFiles(manifest)) {
    if ((await stat(path.join(dir, file)).catch(() => null))?.size !== size) return file;
  }
  return null;
}
