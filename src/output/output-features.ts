/** The output's `datasets` features, as plain JSON: what the writer thread needs, without apache-arrow. */

import { stringFeature } from '../source/source-schema.js';

const messagesFeature = [{ role: stringFeature, content: [{ type: stringFeature, text: stringFeature }] }];

/**
 * The `datasets` features of the output, in the serialization every `datasets` version from 2.x to 5.x reads:
 * message columns as a JSON list holding the struct, images as a Sequence of Image.
 */
export const outputFeatures = {
  chosen: messagesFeature,
  rejected: messagesFeature,
  prompt: messagesFeature,
  images: { feature: { _type: 'Image' }, _type: 'Sequence' },
};

/** The value of the `huggingface` key in the schema and footer metadata. */
export const outputHuggingfaceMetadata = JSON.stringify({ info: { features: outputFeatures } });
