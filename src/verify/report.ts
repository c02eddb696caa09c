import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { ConvertReport } from '../run/convert-report.js';
import { fileBuffer } from '../parquet/read-column-pages.js';
import type { VerifyProblem } from './problem.js';
import { count } from '../util/format.js';
import { CutShort, fileCrc, readParquetFooter, type Shard } from './shards.js';

/** The output checked against its report.json: the shards it says were written, the rows, the rejects. */

/** What is wrong with a parsed report.json as this tool's report, in the fields verify reads; null when nothing. */
function reportFlaw(value: unknown): string | null {
  const report = value as Partial<ConvertReport> | null;
  if (report === null || typeof report !== 'object' || Array.isArray(report)) return 'it is not an object';
  if (typeof report.input?.rows !== 'number') return 'it has no input.rows';
  if (typeof report.rejected?.rows !== 'number') return 'it has no rejected.rows';
  const splits = report.output?.splits;
  if (splits === null || typeof splits !== 'object') return 'it has no output.splits';
  for (const [name, split] of Object.entries(splits)) {
    if (typeof split?.rows !== 'number' || !Array.isArray(split.files)) return `its output.splits.${name} has no rows or files`;
    const files = split.files as { file?: unknown; size?: unknown; crc?: unknown }[];
    if (!files.every((file) => typeof file?.file === 'string' && typeof file.size === 'number' && typeof file.crc === 'number')) return `its output.splits.${name}.files are not files with a size and a CRC`;
  }
  return null;
}

/**
 * report.json, read: `missing` when there is none (an output not of this tool), null when it is there but does not read
 * as this tool's report (cut short, emptied, edited), which is a problem.
 */
export async function readReport(dir: string, problems: VerifyProblem[]): Promise<ConvertReport | 'missing' | null> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'report.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    problems.push({ code: 'report_damaged', where: 'report.json', message: `report.json cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})` });
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    problems.push({ code: 'report_damaged', where: 'report.json', message: `report.json is not JSON (${error instanceof Error ? error.message : String(error)}): it was cut short or changed` });
    return null;
  }
  const flaw = reportFlaw(parsed);
  if (flaw === null) return parsed as ConvertReport;
  problems.push({ code: 'report_damaged', where: 'report.json', message: `report.json is not a report of this tool (${flaw}): the files cannot be checked against it` });
  return null;
}

/** Checks rejects/rejects.parquet against report.json: there when rows were rejected, whole, every row of it readable. */
export async function checkRejects(dir: string, report: ConvertReport, problems: VerifyProblem[]): Promise<void> {
  const where = 'rejects/rejects.parquet';
  if (report.rejected.rows === 0) return;
  const file = path.join(dir, where);
  const size = (await stat(file).catch(() => null))?.size;
  if (size === undefined) {
    problems.push({ code: 'missing_rejects', where, message: `${where} is missing: report.json says ${count(report.rejected.rows)} rows were rejected, and the file keeps them` });
    return;
  }
  let rows: number;
  try {
    const handle = await open(file, 'r');
    try {
      const metadata = await readParquetFooter(handle, size);
      rows = (await parquetReadObjects({ file: await fileBuffer(handle, size), metadata, compressors, utf8: false })).length;
    } finally {
      await handle.close();
    }
  } catch (error) {
    problems.push({ code: 'rejects_damaged', where, message: `${where} cannot be read: ${error instanceof CutShort ? `it is cut short: ${error.message}` : error instanceof Error ? error.message : String(error)}` });
    return;
  }
  if (rows !== report.rejected.rows) {
    problems.push({ code: 'rows_differ', where, message: `${where} holds ${count(rows)} rows; report.json says ${count(report.rejected.rows)} were rejected` });
  }
}

/** Checks the files against what report.json says was written: each shard's size, CRC-32 and rows, and every row's account. */
export async function checkAgainstReport(
  dir: string,
  report: ConvertReport,
  shards: Shard[],
  rows: Map<string, number>,
  unknown: Set<string>,
  problems: VerifyProblem[],
): Promise<void> {
  const present = new Map(shards.map((shard) => [shard.file, shard]));
  for (const [split, written] of Object.entries(report.output.splits)) {
    for (const file of written.files) {
      const shard = present.get(file.file);
      if (shard === undefined) {
        if (!problems.some((problem) => problem.where === file.file)) problems.push({ code: 'missing_shard', where: file.file, message: `${file.file} is missing` });
        continue;
      }
      if (shard.size !== file.size || (await fileCrc(path.join(dir, file.file))) !== file.crc) {
        problems.push({
          code: 'shard_changed',
          where: file.file,
          message: `${file.file} is not as it was written (${shard.size === file.size ? 'its bytes differ' : `${count(shard.size)} bytes, written with ${count(file.size)}`})`,
        });
      }
    }
    const found = rows.get(split) ?? 0;
    if (!unknown.has(split) && found !== written.rows) {
      problems.push({ code: 'rows_differ', where: `data/${split}-*`, message: `the ${split} shards hold ${count(found)} rows; report.json says ${count(written.rows)} were written` });
    }
  }
  const out = [...rows.values()].reduce((sum, value) => sum + value, 0);
  if (unknown.size === 0 && out + report.rejected.rows !== report.input.rows) {
    problems.push({
      code: 'rows_differ',
      where: 'data/',
      message: `${count(out)} rows in the files and ${count(report.rejected.rows)} rejected do not make the ${count(report.input.rows)} input rows of report.json`,
    });
  }
}
