import type { BenchPoint, BenchResults } from './bench-results.js';

const round = (value: number, digits = 1): string => value.toFixed(digits);

function pointRow(point: BenchPoint): string {
  return (
    `| ${point.numProc} | ${point.batchSize} | ${round(point.rowsPerSecond.median)} (${round(point.rowsPerSecond.min)}–${round(point.rowsPerSecond.max)}) ` +
    `| ${round(point.mbPerSecond.median)} | ${Math.round(point.peakRssMB.max)} | ${round(point.mainThreadBusy, 2)} | ${round(point.cpuPerWorker, 1)} ` +
    `| ${point.stages.read} / ${point.stages.images} / ${point.stages.format} / ${point.stages.write} | ${round(point.efficiency, 2)} ` +
    `| ${point.cpuMsPerRow === null ? 'n/a' : `${round(point.cpuMsPerRow.process, 2)} / ${round(point.cpuMsPerRow.main, 3)} / ${round(point.cpuMsPerRow.busiestOther, 3)}`} |`
  );
}

/** The results as a Markdown report: machine, the grid, the best setting, the limit and the reference. */
export function renderMarkdown(results: BenchResults): string {
  const m = results.machine;
  const lines = [
    `# rlaif-v bench, ${results.date}`,
    '',
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGB} GB, Node ${m.node}, sharp ${m.sharp} (libvips ${m.libvips}).`,
    `Input: ${results.input.rows} rows, ${round(results.input.bytes / 1e6)} MB in ${results.input.files} file(s) (${results.input.path}).`,
    `Images: --images ${results.options.images}${results.options.images === 'keep' ? '' : ` --quality ${results.options.quality}`}; ` +
      `${results.options.repeats} run(s) a point. Command: \`${results.command}\``,
    '',
    '| num-proc | batch | rows/s median (min–max) | MB/s | peak RSS MB | main thread busy | CPU s/worker | read / images / format / write s | efficiency | CPU ms a row: process / main / busiest other |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.points.map(pointRow),
    '',
    `**Best:** --num-proc ${results.best.numProc} --writer-batch-size ${results.best.batchSize}: ${round(results.best.rowsPerSecond)} rows/s.`,
    `Scaling: ${round(results.scaling.ratio, 2)}× from --num-proc 1 to ${results.scaling.numProc} (at batch ${results.scaling.batchSize}).`,
    `Limit: one core validating the same images in a bare loop does ${round(results.limit.imagesPerSecond)} images/s; ` +
      `efficiency = rows/s ÷ (workers × the limit; Pillow's where measured, see Targets) = ${round(results.best.efficiency, 2)} at the best setting.`,
  ];
  if (results.reference !== null) {
    const reference = results.reference;
    lines.push(
      '',
      '## Against the Python reference (examples/datasets/rlaif-v.py logic, same input)',
      '',
      '| tool | setting | rows/s | ratio to the reference at its best |',
      '| --- | --- | --- | --- |',
      ...reference.runs.map(
        (run) => `| reference (datasets ${reference.datasetsVersion}) | num_proc ${run.numProc} | ${round(run.rowsPerSecond)} | ${round(run.rowsPerSecond / reference.best, 2)} |`,
      ),
      ...results.modes.map(
        (mode) =>
          `| rlaif-v | --images ${mode.images}${mode.images === 'keep' ? '' : ` --quality ${mode.quality}`}${mode.maxSide === undefined ? '' : ` --max-side ${mode.maxSide}`}, --num-proc ${mode.numProc}, batch ${mode.batchSize} | ${round(mode.rowsPerSecond)} | ${round(mode.rowsPerSecond / reference.best, 2)} |`,
      ),
      '',
      `The reference flattens each split's indices before writing (${reference.note}).`,
    );
  }
  lines.push(...targetLines(results));
  return `${lines.join('\n')}\n`;
}

/** The throughput targets (issue 9) against this run: each figure, its target, and whether it is met. */
function targetLines(results: BenchResults): string[] {
  const rows: [string, string, string, boolean | null][] = [];
  const check = (name: string, value: number | null, target: string, met: (value: number) => boolean, digits = 2): void => {
    rows.push([name, value === null ? 'n/a' : round(value, digits), target, value === null ? null : met(value)]);
  };
  const plainKeep = results.plain?.find((run) => run.images === 'keep') ?? null;
  const plainJpeg = results.plain?.find((run) => run.images === 'jpeg' && run.maxSide === undefined) ?? null;
  const plainShrunk = results.plain?.find((run) => run.images === 'jpeg' && run.maxSide !== undefined) ?? null;
  const jpeg = results.modes.find((mode) => mode.images === 'jpeg' && mode.maxSide === undefined) ?? null;
  const shrunk = results.modes.find((mode) => mode.images === 'jpeg' && mode.maxSide !== undefined) ?? null;
  const figures = results.bestFigures;
  check('keep ÷ plain pyarrow + Pillow script (one process a core)', plainKeep === null ? null : results.best.rowsPerSecond / plainKeep.rowsPerSecond, '≥ 1.6', (v) => v >= 1.6);
  check('whole-process CPU, ms a row (best setting)', figures.cpuMsPerRow?.process ?? null, '≤ 2.0', (v) => v <= 2);
  check(`--num-proc ${results.scaling.numProc} ÷ --num-proc 1`, results.scaling.ratio, '≥ 1.8', (v) => v >= 1.8);
  check(`main thread CPU while converting, ms a row (before: ${figures.cpuMsPerRow?.mainStartup ?? '?'} s loading and planning)`, figures.cpuMsPerRow?.main ?? null, '≤ 0.15', (v) => v <= 0.15, 3);
  check('busiest other thread (not a worker), ms a row', figures.cpuMsPerRow?.busiestOther ?? null, '≤ 0.3', (v) => v <= 0.3, 3);
  check('jpeg q75 ÷ plain script re-encoding in Pillow', jpeg === null || plainJpeg === null ? null : jpeg.rowsPerSecond / plainJpeg.rowsPerSecond, '≥ 1.0', (v) => v >= 1);
  check(
    `jpeg q75 max-side ${shrunk?.maxSide ?? '?'} ÷ plain script (Pillow draft + thumbnail)`,
    shrunk === null || plainShrunk === null ? null : shrunk.rowsPerSecond / plainShrunk.rowsPerSecond,
    '≥ 1.5',
    (v) => v >= 1.5,
  );
  check('efficiency: rows/s ÷ (cores × Pillow limit)', results.limit.pillow === null ? null : results.best.efficiency, '≥ 0.75', (v) => v >= 0.75);
  const ceilings = figures.ceilings;
  return [
    '',
    '## Targets',
    '',
    '| figure | this run | target | met |',
    '| --- | --- | --- | --- |',
    ...rows.map(([name, value, target, met]) => `| ${name} | ${value} | ${target} | ${met === null ? '—' : met ? 'yes' : '**no**'} |`),
    '',
    ...(results.plain === null
      ? []
      : [`Plain script: ${results.plain.map((run) => `${run.images}${run.maxSide === undefined ? "" : ` max-side ${run.maxSide}`} ${round(run.rowsPerSecond)} rows/s (${round(run.cpuMsPerRow, 2)} ms CPU a row)`).join(', ')}, ${results.plain[0]?.numProc ?? 0} processes.`]),
    ...(ceilings === null ? [] : [`Serial-stage ceilings at the best setting: the main thread allows ${ceilings.main} rows/s, the busiest other thread ${ceilings.busiestOther} rows/s.`]),
    `Limit: this tool's check ${round(results.limit.imagesPerSecond)} images/s on one core; Pillow at libjpeg-turbo speed (bench/limit.py) ${results.limit.pillow === null ? 'not measured' : `${round(results.limit.pillow)} images/s`}. Memory targets: \`npm run bench:large\`.`,
    ...(results.limit.kinds === undefined
      ? []
      : [
          '',
          `By kind of image (this tool's check on one core, --images ${results.limit.images}):`,
          '',
          '| kind | images | ms an image | images/s on one core |',
          '| --- | --- | --- | --- |',
          ...results.limit.kinds.map((kind) => `| ${kind.kind} | ${kind.images} | ${round(kind.msPerImage, 2)} | ${round(1000 / kind.msPerImage)} |`),
        ]),
  ];
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A line chart of rows/s against batch size, one line per worker count, the machine in the title. */
export function renderSvg(results: BenchResults): string {
  const width = 760;
  const height = 440;
  const left = 70;
  const right = 150;
  const top = 60;
  const bottom = 60;
  const batches = [...new Set(results.points.map((point) => point.batchSize))].sort((a, b) => a - b);
  const procs = [...new Set(results.points.map((point) => point.numProc))].sort((a, b) => a - b);
  const maxRate = Math.max(1, ...results.points.map((point) => point.rowsPerSecond.max));
  const yMax = Math.ceil(maxRate / 50) * 50;
  const x = (batch: number): number =>
    left + (batches.length === 1 ? 0.5 : batches.indexOf(batch) / (batches.length - 1)) * (width - left - right);
  const y = (rate: number): number => top + (1 - rate / yMax) * (height - top - bottom);
  const m = results.machine;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">rlaif-v convert: rows/s by batch size and worker count</text>`,
    `<text x="${width / 2}" y="42" text-anchor="middle" fill="#444">${escapeXml(`${m.cores} cores, ${m.memoryGB} GB, Node ${m.node}, sharp ${m.sharp} / libvips ${m.libvips}; ${results.input.rows} rows, --images ${results.options.images}`)}</text>`,
  ];
  for (let tick = 0; tick <= 5; tick++) {
    const rate = (yMax / 5) * tick;
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(rate)}" y2="${y(rate)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 8}" y="${y(rate) + 4}" text-anchor="end">${Math.round(rate)}</text>`);
  }
  for (const batch of batches) {
    parts.push(`<text x="${x(batch)}" y="${height - bottom + 18}" text-anchor="middle">${batch}</text>`);
  }
  parts.push(`<text x="${(left + width - right) / 2}" y="${height - 18}" text-anchor="middle">--writer-batch-size (rows per task)</text>`);
  parts.push(`<text transform="translate(18 ${(top + height - bottom) / 2}) rotate(-90)" text-anchor="middle">rows/s (median)</text>`);
  procs.forEach((numProc, index) => {
    const colour = COLOURS[index % COLOURS.length] ?? '#000';
    const points = results.points.filter((point) => point.numProc === numProc).sort((a, b) => a.batchSize - b.batchSize);
    parts.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.map((point) => `${x(point.batchSize)},${y(point.rowsPerSecond.median)}`).join(' ')}"/>`,
    );
    for (const point of points) {
      parts.push(`<circle cx="${x(point.batchSize)}" cy="${y(point.rowsPerSecond.median)}" r="3.5" fill="${colour}"/>`);
      parts.push(`<line x1="${x(point.batchSize)}" x2="${x(point.batchSize)}" y1="${y(point.rowsPerSecond.min)}" y2="${y(point.rowsPerSecond.max)}" stroke="${colour}"/>`);
    }
    parts.push(`<line x1="${width - right + 16}" x2="${width - right + 40}" y1="${top + 10 + index * 20}" y2="${top + 10 + index * 20}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${width - right + 46}" y="${top + 14 + index * 20}">--num-proc ${numProc}</text>`);
  });
  const best = results.best;
  parts.push(
    `<circle cx="${x(best.batchSize)}" cy="${y(best.rowsPerSecond)}" r="8" fill="none" stroke="black" stroke-width="1.5"/>`,
    `<text x="${width - right + 16}" y="${top + 24 + procs.length * 20}" font-weight="bold">best: ${best.numProc} × ${best.batchSize}</text>`,
    `<text x="${width - right + 16}" y="${top + 40 + procs.length * 20}">${round(best.rowsPerSecond)} rows/s</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
