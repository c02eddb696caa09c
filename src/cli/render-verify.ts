import type { VerifyReport } from '../verify/verify.js';

/**
 * The closing text of verify: what holds, for an output without problems (its stages are drawn as any other's, by the
 * progress line).
 */
export function verifySummary(report: VerifyReport): string {
  const splits = Object.entries(report.splits)
    .map(([name, split]) => `${split.rows.toLocaleString('en-US')} ${name} rows in ${split.files} shard(s)`)
    .join(', ');
  return `${report.dir}: all holds. ${splits}; ${report.images.checked.toLocaleString('en-US')} images decode.${report.notes.map((note) => ` (${note})`).join('')}`;
}

/** The closing text of verify for an output with problems: each one, with its code. */
export function verifyProblems(report: VerifyReport): string {
  return `rlaif-v: ${report.dir} has ${report.problems.length} problem(s):\n${report.problems.map((problem) => `  ${problem.code}: ${problem.message}`).join('\n')}`;
}
