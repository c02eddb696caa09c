import { Binary, Field, Schema, Struct, Utf8, type DataType } from 'apache-arrow';

/** The schema of the source dataset, openbmb/RLAIF-V-Dataset: its columns and their `datasets` features. */

/** A nullable field, as pyarrow and `datasets` write every field. */
export function field(name: string, type: DataType): Field {
  return new Field(name, type, true);
}

/** A string column's `datasets` feature. */
export const stringFeature = { dtype: 'string', _type: 'Value' };

/** The columns the source must have, in the order openbmb/RLAIF-V-Dataset holds them. */
export const SOURCE_COLUMNS = [
  'ds_name',
  'image',
  'question',
  'chosen',
  'rejected',
  'origin_dataset',
  'origin_split',
  'idx',
  'image_path',
] as const;

/** Every source column but `image`: all strings. */
export const SOURCE_STRING_COLUMNS = SOURCE_COLUMNS.filter(
  (name): name is Exclude<(typeof SOURCE_COLUMNS)[number], 'image'> => name !== 'image',
);

/** `struct<bytes: binary, path: string>`, a `datasets` Image. */
export const sourceImageType = new Struct([field('bytes', new Binary()), field('path', new Utf8())]);

/** The Arrow schema of the source dataset, with its `huggingface` metadata. */
export function sourceSchema(): Schema {
  const features: Record<string, unknown> = {};
  for (const name of SOURCE_COLUMNS) features[name] = name === 'image' ? { _type: 'Image' } : stringFeature;
  return new Schema(
    SOURCE_COLUMNS.map((name) => field(name, name === 'image' ? sourceImageType : new Utf8())),
    new Map([['huggingface', JSON.stringify({ info: { features } })]]),
  );
}
