import { Binary, List, Schema, Struct, Table, Utf8, tableToIPC, type DataType } from 'apache-arrow';
import { field } from '../source/source-schema.js';
import { outputHuggingfaceMetadata } from './output-features.js';

/** A list whose child is named `element`, as pyarrow writes lists to parquet. */
function listOf(type: DataType): List {
  return new List(field('element', type));
}

const contentType = listOf(new Struct([field('type', new Utf8()), field('text', new Utf8())]));

/** `list<struct<role: string, content: list<struct<type: string, text: string>>>>` */
export const messagesType = listOf(new Struct([field('role', new Utf8()), field('content', contentType)]));

/** `list<struct<bytes: binary, path: string>>`: the struct order `datasets` requires to see an Image. */
export const imagesType = listOf(new Struct([field('bytes', new Binary()), field('path', new Utf8())]));


/** The Arrow schema of every output shard, with the `huggingface` features metadata. */
export const outputSchema = new Schema(
  [field('chosen', messagesType), field('rejected', messagesType), field('prompt', messagesType), field('images', imagesType)],
  new Map([['huggingface', outputHuggingfaceMetadata]]),
);

/**
 * The value of `ARROW:schema` in every shard's footer, as pyarrow stores it: the IPC message of the output's Arrow
 * schema, base64. Made here, where apache-arrow is loaded anyway, so the writer thread need not load it.
 */
export function outputArrowSchemaValue(): string {
  const stream = tableToIPC(new Table(outputSchema), 'stream');
  const length = new DataView(stream.buffer, stream.byteOffset + 4, 4).getInt32(0, true);
  return Buffer.from(stream.subarray(0, 8 + length)).toString('base64');
}

/** The `dataset_info.features` block of the dataset card's YAML, listing every column as the files hold it. */
export const outputYamlFeatures = `  features:
${(['chosen', 'rejected', 'prompt'] as const)
  .map(
    (name) => `  - name: ${name}
    list:
    - name: role
      dtype: string
    - name: content
      list:
      - name: type
        dtype: string
      - name: text
        dtype: string`,
  )
  .join('\n')}
  - name: images
    sequence: image
`;
