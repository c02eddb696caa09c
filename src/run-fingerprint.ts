import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ResolvedConvertOptions } from './convert-options.js';
import type { InputPlan } from './inspect-input.js';
import { packageInfo } from './package-info.js';
import { LOGICAL_COLUMNS } from './source-layout.js';

/**
 * What makes an output what it is, as one SHA-256: the input (each file's name, size, rows and footer, in order) and
 * the options that shape the data (split, images, shards, row groups), with the tool's version. The worker count and
 * batch size are not in it (they never change the bytes), nor where the files are (a moved copy gives the same output).
 * Two runs with the same fingerprint write the same data files and card; a resumed or split run checks its parts by it.
 */
export function runFingerprint(plan: InputPlan, options: ResolvedConvertOptions): string {
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
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}
