import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import type { ResolvedConvertOptions } from '../options/convert-options.js';
import type { InputPlan } from './inspect-input.js';
import { packageInfo } from '../util/package-info.js';
import { LOGICAL_COLUMNS } from '../source/source-layout.js';

/**
 * What makes an output what it is, as one SHA-256: the input (each file's name, size, rows and footer, in order) and
 * the options that shape the data (split, images, shards, row groups), with the tool's version. The worker count and
 * batch size are not in it (they never change the bytes), nor where the files are (a moved copy gives the same output).
 * Two runs with the same fingerprint write the same data files and card; a resumed or split run checks its parts by it.
 */
export function runFingerprint(plan: InputPlan, options: ResolvedConvertOptions, imageFiles?: string): string {
  const identity = {
    tool: `${packageInfo.name} ${packageInfo.version}`,
    files: plan.files.map((file) => ({ name: path.basename(file.path), size: file.size, rows: file.rows, footer: file.footerSha256 })),
    testSize: options.testSize,
    seed: options.seed,
    image: options.image,
    maxShardSize: options.maxShardSize,
    rowGroupSize: options.rowGroupSize,
    // Which column is which changes what goes where; left out when they are the usual ones (fingerprints stay as they were).
    ...(LOGICAL_COLUMNS.some((logical) => options.columns[logical] !== logical) ? { columns: options.columns } : {}),
    // Images kept in files of their own (the image column holds paths): what identifies those files.
    ...(imageFiles === undefined ? {} : { imageFiles }),
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/**
 * What identifies the image files of an input whose image column holds paths, as one SHA-256 (undefined when no file
 * of the input does): each path as given, with the size and time of change of the file it names (or that it names
 * none). Changed files change the fingerprint, so a run is never taken up, nor parts put together, across a change.
 */
export async function imageFilesDigest(plan: InputPlan): Promise<string | undefined> {
  const withPaths = plan.files.filter((file) => file.layout.kind === 'source' && file.layout.image === 'path');
  if (withPaths.length === 0) return undefined;
  const hash = createHash('sha256');
  for (const file of withPaths) {
    if (file.layout.kind !== 'source') continue;
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(file.path), columns: [file.layout.columns.image] });
    const dir = path.dirname(path.resolve(file.path));
    for (const row of rows) {
      const name: unknown = row[file.layout.columns.image];
      if (typeof name !== 'string') {
        hash.update('-\n');
        continue;
      }
      const info = await stat(path.resolve(dir, name)).catch(() => null);
      hash.update(`${JSON.stringify(name)} ${info === null ? 'none' : `${info.size} ${info.mtimeMs} ${info.ctimeMs}`}\n`);
    }
  }
  return hash.digest('hex');
}
