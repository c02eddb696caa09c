import { SPLITS } from '../output/splits.js';
import { loadLine } from '../output/load-line.js';
import { outputYamlFeatures } from '../output/output-schema.js';
import { packageInfo } from '../util/package-info.js';
import type { ConvertReport } from './convert-report.js';
import type { SourceCard } from '../hub/source-card.js';
import type { ImageMode, ImagePolicy } from '../image/image-policy.js';

export { cardForRepo, loadLine } from '../output/load-line.js';

export interface CardSplit {
  name: string;
  rows: number;
  numBytes: number;
}

/** What was converted: a Hub dataset at a commit, or local files; and what its own card says. */
export interface CardSource {
  dataset?: { repo: string; revision: string; commit: string };
  files: { path: string; rows: number; footerSha256: string }[];
  card: SourceCard | null;
}

export interface CardInfo {
  splits: CardSplit[];
  /** Bytes of all parquet files written. */
  downloadSize: number;
  seed: number;
  testSize: number;
  image: ImagePolicy;
  maxShardSize: number;
  rowsIn: number;
  rowsRejected: number;
  source: CardSource;
  /** What `load_dataset` is given to load it: the output directory (a push puts the repo id in its place). */
  location: string;
}

const SPDX_NAMES: Record<string, [string, string]> = {
  'cc-by-nc-4.0': ['CC BY-NC 4.0', 'https://creativecommons.org/licenses/by-nc/4.0/'],
  'cc-by-4.0': ['CC BY 4.0', 'https://creativecommons.org/licenses/by/4.0/'],
  'cc-by-sa-4.0': ['CC BY-SA 4.0', 'https://creativecommons.org/licenses/by-sa/4.0/'],
  'apache-2.0': ['Apache 2.0', 'https://www.apache.org/licenses/LICENSE-2.0'],
  mit: ['MIT', 'https://opensource.org/license/mit'],
};

/** The Hub's size category of a dataset of `rows` rows. */
function sizeCategory(rows: number): string {
  const bounds: [number, string][] = [
    [1e3, 'n<1K'],
    [1e4, '1K<n<10K'],
    [1e5, '10K<n<100K'],
    [1e6, '100K<n<1M'],
    [1e7, '1M<n<10M'],
  ];
  return bounds.find(([bound]) => rows < bound)?.[1] ?? '10M<n<100M';
}

function sourceText(source: CardSource): { title: string; made: string } {
  const dataset = source.dataset;
  if (dataset !== undefined) {
    return {
      title: source.card?.name ?? dataset.repo.split('/').pop() ?? dataset.repo,
      made:
        `Made from the Hugging Face dataset [${dataset.repo}](https://huggingface.co/datasets/${dataset.repo}) at commit ` +
        `\`${dataset.commit}\`${dataset.revision === dataset.commit ? '' : ` (revision \`${dataset.revision}\`)`}: ${source.files.length} parquet ` +
        `file(s), ${source.files.reduce((sum, file) => sum + file.rows, 0).toLocaleString('en-US')} rows.`,
    };
  }
  const files = source.files
    .map((file) => `| \`${file.path.split(/[\\/]/).pop() ?? file.path}\` | ${file.rows.toLocaleString('en-US')} | \`${file.footerSha256.slice(0, 16)}\` |`)
    .join('\n');
  return {
    title: source.card?.name ?? 'RLAIF-V-shaped data',
    made: `Made from local parquet files, each with the SHA-256 of its footer (its metadata), which identifies its content:\n\n| file | rows | footer SHA-256 |\n| --- | --- | --- |\n${files}`,
  };
}

function licenceText(card: SourceCard | null): string {
  const license = card?.license ?? null;
  if (license === null) {
    return (
      "The source's licence is unknown: its card states none" +
      (card === null ? ' (no card was found beside it)' : '') +
      '. Check the terms of the source before you use or share this dataset; this one is under the same terms.'
    );
  }
  const known = SPDX_NAMES[license];
  const named = known === undefined ? `\`${license}\`` : `[${known[0]}](${known[1]})`;
  return `The source is released under ${named} (as its card, \`${card?.from ?? ''}\`, states); this derived dataset carries the same licence${license.includes('-nc') ? ' and is for non-commercial use' : ''}.`;
}

function imageText(image: ImagePolicy): string {
  const side = image.maxSide === null ? '' : ` Images larger than ${image.maxSide} pixels on their longest side were shrunk to fit it.`;
  if (image.mode === 'keep') {
    return (
      'stored byte for byte as in the source where they were already JPEG, PNG or WebP, 8-bit, sRGB or grey, upright' +
      `${image.maxSide === null ? '' : ' and small enough'}. Others were normalized (EXIF orientation applied, converted to sRGB, metadata ` +
      'stripped) and re-encoded as JPEG at quality 95, or as PNG where they have real transparency; so a PNG without ' +
      `transparency that had to be changed${image.maxSide === null ? '' : ' (shrunk, say)'} is now a JPEG.${side}`
    );
  }
  if (image.mode === 'png') return `all re-encoded as PNG (lossless).${side}`;
  const transparency = image.mode === 'jpeg' ? ' JPEG has no transparency: transparent pixels were laid on white.' : '';
  return `all re-encoded as ${image.mode.toUpperCase()} at quality ${image.quality}.${transparency}${side}`;
}

function splitText(info: CardInfo): string {
  const rows = info.splits.map((split) => `${split.rows.toLocaleString('en-US')} ${split.name}`).join(' and ');
  if (info.testSize === 0 || !info.splits.some((split) => split.name === 'test')) return `${rows} rows; no test split was made (test size 0).`;
  const size = info.testSize < 1 ? `${Number((info.testSize * 100).toPrecision(12))}% of the rows, rounded up` : `${info.testSize.toLocaleString('en-US')} rows`;
  return (
    `${rows} rows. The test split is ${size}, chosen by a permutation seeded with ${info.seed}, so the same input gives the ` +
    'same split; rows keep their source order within each split.'
  );
}

/**
 * The dataset's README.md: the YAML that `load_dataset` checks the files against (`dataset_info`, `configs`) and that
 * the Hub shows (licence, task, size, tags), then a card saying what the data is, what it was made from (the Hub
 * dataset and commit, or the local files) under what licence (the source card's own), how it was made, its columns,
 * how to load it and how to cite the source. It holds only what determines the data, and where the dataset is.
 */
export function datasetCard(info: CardInfo): string {
  const datasetSize = info.splits.reduce((total, split) => total + split.numBytes, 0);
  const rowsOut = info.splits.reduce((total, split) => total + split.rows, 0);
  const splits = info.splits.map((split) => `  - name: ${split.name}\n    num_bytes: ${split.numBytes}\n    num_examples: ${split.rows}\n`).join('');
  const dataFiles = info.splits.map((split) => `  - split: ${split.name}\n    path: data/${split.name}-*\n`).join('');
  const { title, made } = sourceText(info.source);
  const citation = info.source.card?.citation ?? null;
  return `---
license: ${info.source.card?.license ?? 'unknown'}
task_categories:
- image-text-to-text
size_categories:
- ${sizeCategory(rowsOut)}
tags:
- trl
- dpo
- vision
dataset_info:
${outputYamlFeatures}  splits:
${splits}  download_size: ${info.downloadSize}
  dataset_size: ${datasetSize}
configs:
- config_name: default
  data_files:
${dataFiles}---

# ${title} in TRL's conversational format

Image preference data for direct preference optimization (DPO) of vision-language models, in the conversational
format that [TRL](https://github.com/huggingface/trl)'s \`DPOTrainer\` reads: each row is a prompt holding an image and a
question, a preferred (\`chosen\`) and a dispreferred (\`rejected\`) answer, and the image.

## Source and licence

${made}

${licenceText(info.source.card)}

## How it was made

Converted with ${packageInfo.name} ${packageInfo.version}, which applies the transform of TRL's
\`examples/datasets/rlaif-v.py\`: the question after an image placeholder as the user prompt, each answer as one
assistant message, the row's image in a list; every other column is dropped.

- Split: ${splitText(info)}
- Images: ${imageText(info.image)}
- Rows: ${info.rowsIn.toLocaleString('en-US')} read, ${info.rowsRejected.toLocaleString('en-US')} rejected (an image that does not decode, or a missing or empty text).
- Shards: at most ${info.maxShardSize.toLocaleString('en-US')} bytes of uncompressed data each, 100 rows a row group.

## Columns

| column | type | content |
| --- | --- | --- |
| \`prompt\` | list of messages | one \`user\` message: \`[{"type": "image"}, {"type": "text", "text": question}]\` |
| \`chosen\` | list of messages | one \`assistant\` message with the preferred answer |
| \`rejected\` | list of messages | one \`assistant\` message with the dispreferred answer |
| \`images\` | list of images | the row's one image |

\`\`\`python
from datasets import load_dataset

${loadLine(info.location)}
\`\`\`
${
  citation === null
    ? ''
    : `
## Citation

Cite the source dataset:

\`\`\`bibtex
${citation}
\`\`\`
`
}`;
}

/** The card of a finished run, from its report: the same card whether one machine or several wrote the output. */
export function reportCard(report: ConvertReport): string {
  const { options, input } = report;
  return datasetCard({
    splits: SPLITS.flatMap((name) => {
      const split = report.output.splits[name];
      return split === undefined ? [] : [{ name, rows: split.rows, numBytes: split.numBytes }];
    }),
    downloadSize: report.output.bytes,
    seed: options.seed,
    testSize: options.testSize,
    image: { mode: options.images as ImageMode, quality: options.quality, maxSide: options.maxSide, maxPixels: options.maxPixels },
    maxShardSize: options.maxShardSize,
    rowsIn: input.rows,
    rowsRejected: report.rejected.rows,
    source: {
      ...(input.dataset === undefined ? {} : { dataset: { repo: input.dataset.repo, revision: input.dataset.revision, commit: input.dataset.commit } }),
      files: input.files.map((file) => ({ path: file.path, rows: file.rows, footerSha256: file.footerSha256 })),
      card: input.card ?? null,
    },
    location: report.output.dir,
  });
}
