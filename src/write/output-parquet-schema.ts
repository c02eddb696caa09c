import type { SchemaElement } from 'hyparquet';

const text = (name: string): SchemaElement => ({ name, type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8', logical_type: { type: 'STRING' } });
/** A three-level LIST group as pyarrow writes it, its element a struct of `fields` fields given by `children`. */
const list = (name: string, fields: number, children: SchemaElement[]): SchemaElement[] => [
  { name, repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST', logical_type: { type: 'LIST' } },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: fields },
  ...children,
];

const messages = (name: string): SchemaElement[] => list(name, 2, [text('role'), ...list('content', 2, [text('type'), text('text')])]);

/**
 * The parquet schema of every shard, as pyarrow writes the Arrow schema of `output-schema`: lists as three-level
 * LIST groups with children named `element`, every field optional, strings annotated, image bytes plain binary.
 */
export const OUTPUT_PARQUET_SCHEMA: SchemaElement[] = [
  { name: 'arrow_schema', repetition_type: 'REQUIRED', num_children: 4 },
  ...messages('chosen'),
  ...messages('rejected'),
  ...messages('prompt'),
  ...list('images', 2, [{ name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' }, text('path')]),
];
