import { outputYamlFeatures } from './output-schema.js';
import { packageInfo } from './package-info.js';
import type { ConvertReport } from './convert-report.js';
import type { ImageMode, ImagePolicy } from './types.js';

export interface CardSplit {
  name: string;
  rows: number;
  numBytes: number;
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
}

/**
 * The dataset's README.md: the `dataset_info` and `configs` YAML that `load_dataset` checks the files against, then a
 * card saying what the data is, where it comes from, its licence, how it was made and its columns. It holds only
 * what determines the bytes of the data, so it too is identical for any worker count or batch size.
 */
export function datasetCard(info: CardInfo): string {
  const datasetSize = info.splits.reduce((total, split) => total + split.numBytes, 0);
  const splits = info.splits
    .map((split) => `  - name: ${split.name}\n    num_bytes: ${split.numBytes}\n    num_examples: ${split.rows}\n`)
    .join('');
  const dataFiles = info.splits.map((split) => `  - split: ${split.name}\n    path: data/${split.name}-*\n`).join('');
  const image = info.image;
  const imageText =
    image.mode === 'keep'
      ? 'Images that were already JPEG, PNG or WebP, 8-bit, sRGB or grey and upright are stored byte for byte as in the ' +
        'source. Others were normalized: EXIF orientation applied, converted to sRGB, metadata stripped, re-encoded as ' +
        'JPEG (quality 95), or PNG where they have transparency.'
      : `Every image was re-encoded as ${image.mode.toUpperCase()}${image.mode === 'png' ? '' : ` at quality ${image.quality}`}.`;
  const sideText = image.maxSide === null ? '' : ` Images larger than ${image.maxSide} pixels on their longest side were shrunk to fit.`;
  const splitText = info.splits.map((split) => `${split.rows.toLocaleString('en-US')} ${split.name}`).join(' and ');
  const testText = info.testSize < 1 ? `${info.testSize} of the rows (rounded up)` : `${info.testSize} rows`;
  return `---
license: cc-by-nc-4.0
tags:
- trl
dataset_info:
${outputYamlFeatures}  splits:
${splits}  download_size: ${info.downloadSize}
  dataset_size: ${datasetSize}
configs:
- config_name: default
  data_files:
${dataFiles}---

# RLAIF-V in TRL's conversational format

Image preference data for direct preference optimization (DPO) of vision-language models, in the conversational
format that [TRL](https://github.com/huggingface/trl)'s \`DPOTrainer\` reads: each row is a prompt holding an image and a
question, a preferred (\`chosen\`) and a dispreferred (\`rejected\`) answer, and the image.

## Source and licence

Made from [openbmb/RLAIF-V-Dataset](https://huggingface.co/datasets/openbmb/RLAIF-V-Dataset), which is released under
the [CC BY-NC 4.0](https://creativecommons.org/licenses/by-nc/4.0/) licence; this derived dataset carries the same
licence and is for non-commercial use.

## How it was made

Converted with ${packageInfo.name} ${packageInfo.version}, which applies the transform of TRL's
\`examples/datasets/rlaif-v.py\`: the question after an image placeholder as the user prompt, each answer as one
assistant message, the row's image in a list; every other column is dropped.

- Split: ${splitText} rows. The test split is ${testText}, chosen by a permutation seeded with ${info.seed}, so the
  same input gives the same split; rows keep their source order within each split.
- Images: ${imageText}${sideText}
- Rows: ${info.rowsIn.toLocaleString('en-US')} read, ${info.rowsRejected.toLocaleString('en-US')} rejected (an image that does not decode or a missing field).
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

dataset = load_dataset("path/to/this/dataset")
\`\`\`
`;
}

/** The card of a finished run, from its report: the same card whether one machine or several wrote the output. */
export function reportCard(report: ConvertReport): string {
  const { options } = report;
  return datasetCard({
    splits: (['train', 'test'] as const).flatMap((name) => {
      const split = report.output.splits[name];
      return split === undefined ? [] : [{ name, rows: split.rows, numBytes: split.numBytes }];
    }),
    downloadSize: report.output.bytes,
    seed: options.seed,
    testSize: options.testSize,
    image: { mode: options.images as ImageMode, quality: options.quality, maxSide: options.maxSide, maxPixels: options.maxPixels },
    maxShardSize: options.maxShardSize,
    rowsIn: report.input.rows,
    rowsRejected: report.rejected.rows,
  });
}
