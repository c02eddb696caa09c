/**
 * A large input file that is a single row group (what the real source files appear to be) converts, and how much
 * memory that takes: `npm run bench:large -- [--rows 6500] [--num-proc 2]`.
 *
 * The file holds `rows` rows of RLAIF-V-like images, every one distinct (see source-like-input: neither the in-run
 * sharing nor the cache can skip an image), about 1 GB for the default 6,500 rows, once with pages as large as pyarrow
 * makes them (~160 MB) and once with pages of ~1 MiB. Each is converted in a child process (the cache off); the bench
 * prints its peak RSS, the image data the pipeline counted in flight, and the images it checked.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureNode } from '../src/bench/measure-process.js';
import { CLI, ROOT } from './shaped-input.js';
import { sourceLikeInput } from './source-like-input.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '6500' },
    'num-proc': { type: 'string', default: '2' },
  },
});
const rows = Number(values.rows);

for (const pages of ['pyarrow', 'small'] as const) {
  const input = await sourceLikeInput({ rows, files: 1, pages });
  const file = (await readdir(input)).find((name) => name.endsWith('.parquet')) ?? '';
  const bytes = (await stat(path.join(input, file))).size;
  const output = path.join(ROOT, 'bench', '.cache', `out-large-${pages}`);
  // With MALLOC_ARENA_MAX set, bin.js runs the conversion in this very process (no relaunch), as it runs for users.
  const run = await measureNode(
    [CLI, 'convert', '--input', input, '--output', output, '--overwrite', '--quiet', '--json', '--no-cache', '--num-proc', values['num-proc'] ?? '2'],
    { MALLOC_ARENA_MAX: '2' },
  );
  await rm(output, { recursive: true, force: true });
  const report =
    run.code === 0 ? (JSON.parse(run.stdout) as { input: { rows: number }; images: { distinct: number; validated: number }; memory?: { peakBytesInFlight: number } }) : null;
  console.log(
    JSON.stringify({
      pages: pages === 'pyarrow' ? 'pages as pyarrow makes them (~160 MB)' : 'pages of ~1 MiB',
      fileMB: Math.round(bytes / 1e6),
      rows: report?.input.rows ?? rows,
      distinctImages: report?.images.distinct ?? null,
      imagesChecked: report?.images.validated ?? null,
      numProc: Number(values['num-proc']),
      exitCode: run.code,
      seconds: Math.round(run.seconds * 10) / 10,
      rowsPerSecond: Math.round(rows / run.seconds),
      peakRssMB: Math.round(run.peakRss / 1e6),
      peakInFlightMB: report?.memory === undefined ? null : Math.round(report.memory.peakBytesInFlight / 1e6),
    }),
  );
  if (run.code !== 0) process.stderr.write(run.stderr);
}
