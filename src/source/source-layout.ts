import { DataType, type Field, type Schema } from 'apache-arrow';
import { InputError } from '../errors.js';

/**
 * How an input file holds its rows. Two shapes are read:
 * - `source`: one row per preference, as openbmb/RLAIF-V-Dataset holds them: an image column and question, chosen and
 *   rejected text columns (under other names with `--columns`). The image is a `datasets` Image (struct of bytes and
 *   path), plain binary, or a path to an image file relative to the parquet file. The source's other columns (ds_name,
 *   origin_dataset, origin_split, idx, image_path) are read where present, for rejected rows to keep; none is needed.
 * - `converted`: an output of this tool, or trl-lib/rlaif-v: prompt, chosen and rejected as lists of messages and
 *   images as a list of images. The question, the answers and the first image are taken back out of them.
 */
export type SourceLayout =
  | { kind: 'source'; columns: ColumnMap; image: 'struct' | 'binary' | 'path'; extras: ExtraColumn[] }
  | { kind: 'converted' };

/** The columns a conversion reads, by what they hold. */
export type LogicalColumn = 'image' | 'question' | 'chosen' | 'rejected';
export type ColumnMap = Record<LogicalColumn, string>;

export const LOGICAL_COLUMNS: readonly LogicalColumn[] = ['image', 'question', 'chosen', 'rejected'];
export const DEFAULT_COLUMNS: ColumnMap = { image: 'image', question: 'question', chosen: 'chosen', rejected: 'rejected' };

/** The source's columns that the output drops but a rejected row keeps. */
export const EXTRA_COLUMNS = ['ds_name', 'origin_dataset', 'origin_split', 'idx', 'image_path'] as const;
export type ExtraColumn = (typeof EXTRA_COLUMNS)[number];

/** The columns of a converted dataset. */
export const CONVERTED_COLUMNS = ['chosen', 'rejected', 'prompt', 'images'] as const;

function isString(type: DataType): boolean {
  return DataType.isUtf8(type) || DataType.isLargeUtf8(type);
}

function isBinary(type: DataType): boolean {
  return DataType.isBinary(type) || DataType.isLargeBinary(type);
}

function isList(type: DataType | undefined): boolean {
  return type !== undefined && (DataType.isList(type) || DataType.isLargeList(type));
}

/** `--columns image=IMG`: how a mapped column is named in messages. */
function named(logical: LogicalColumn, columns: ColumnMap): string {
  return columns[logical] === logical ? `column ${logical}` : `column ${columns[logical]} (--columns ${logical}=${columns[logical]})`;
}

/**
 * The layout of a file, from its Arrow schema and the column names asked for. Extra columns are ignored.
 *
 * @throws {InputError} `ERR_MISSING_COLUMN` or `ERR_COLUMN_TYPE` naming the file and the column (as mapped).
 */
export function sourceLayout(file: string, schema: Schema, columns: ColumnMap): SourceLayout {
  const byName = new Map<string, Field>(schema.fields.map((field) => [field.name, field]));
  const mapped = LOGICAL_COLUMNS.some((logical) => columns[logical] !== logical);
  if (!mapped && !byName.has('question') && CONVERTED_COLUMNS.every((name) => byName.has(name)) && isList(byName.get('prompt')?.type)) {
    for (const name of CONVERTED_COLUMNS) {
      if (!isList(byName.get(name)?.type)) {
        throw new InputError('ERR_COLUMN_TYPE', `${file}: column ${name} is ${String(byName.get(name)?.type)}, expected a list (as in a converted dataset).`, { file });
      }
    }
    return { kind: 'converted' };
  }
  const missing = LOGICAL_COLUMNS.filter((logical) => !byName.has(columns[logical]));
  if (missing.length > 0) {
    const hint = mapped ? '' : ' Name them with --columns image=…,question=…,chosen=…,rejected=… if they are there under other names.';
    throw new InputError(
      'ERR_MISSING_COLUMN',
      `${file}: missing ${missing.map((logical) => named(logical, columns)).join(', ')}. A conversion reads an image and the question, ` +
        `chosen and rejected texts of each row (the columns of openbmb/RLAIF-V-Dataset), or a converted dataset's prompt, chosen, rejected and images.${hint}`,
      { file },
    );
  }
  for (const logical of ['question', 'chosen', 'rejected'] as const) {
    const type = byName.get(columns[logical])?.type;
    if (type !== undefined && !isString(type)) {
      throw new InputError('ERR_COLUMN_TYPE', `${file}: ${named(logical, columns)} is ${String(type)}, expected string.`, { file });
    }
  }
  const imageType = byName.get(columns.image)?.type;
  let image: 'struct' | 'binary' | 'path' | null = null;
  if (imageType !== undefined && DataType.isStruct(imageType)) {
    const bytes = imageType.children.find((child) => child.name === 'bytes');
    const path = imageType.children.find((child) => child.name === 'path');
    if (bytes !== undefined && path !== undefined && isBinary(bytes.type) && isString(path.type)) image = 'struct';
  } else if (imageType !== undefined && isBinary(imageType)) image = 'binary';
  else if (imageType !== undefined && isString(imageType)) image = 'path';
  if (image === null) {
    throw new InputError(
      'ERR_COLUMN_TYPE',
      `${file}: ${named('image', columns)} is ${String(imageType)}, expected struct<bytes: binary, path: string> (a datasets Image), binary (the image's bytes), or string (a path to the image file, relative to the parquet file).`,
      { file },
    );
  }
  const extras = EXTRA_COLUMNS.filter((name) => {
    const type = byName.get(name)?.type;
    return type !== undefined && isString(type) && !LOGICAL_COLUMNS.some((logical) => columns[logical] === name);
  });
  return { kind: 'source', columns, image, extras };
}

/** The top-level columns a file of this layout is read by: all of them, or all but the image when it is read by pages. */
export function columnsOf(layout: SourceLayout, withoutImage = false): string[] {
  if (layout.kind === 'converted') return [...CONVERTED_COLUMNS];
  const { columns } = layout;
  return [...(withoutImage ? [] : [columns.image]), columns.question, columns.chosen, columns.rejected, ...layout.extras];
}

/** The leaf columns (dotted paths) whose uncompressed size is about what the output keeps of a row. */
export function outputLeaves(layout: SourceLayout, leaf: string): boolean {
  if (layout.kind === 'converted') return (CONVERTED_COLUMNS as readonly string[]).includes(leaf.split('.')[0] ?? '');
  const { columns } = layout;
  const imageBytes = layout.image === 'struct' ? `${columns.image}.bytes` : layout.image === 'binary' ? columns.image : null;
  return [columns.question, columns.chosen, columns.rejected, imageBytes].includes(leaf);
}

/**
 * The leaf paths the page reader reads the image by: its bytes and, for a `datasets` Image, its path. Null when the
 * image is not read by pages: a path to a file, or a converted dataset's list of images.
 */
export function imageLeaves(layout: SourceLayout): { bytes: string[]; path: string[] | null } | null {
  if (layout.kind === 'converted' || layout.image === 'path') return null;
  return layout.image === 'struct' ? { bytes: [layout.columns.image, 'bytes'], path: [layout.columns.image, 'path'] } : { bytes: [layout.columns.image], path: null };
}

/**
 * Reads `--columns image=IMG,question=Q,...` (any of the four, each once).
 *
 * @throws {Error} with a message for the user, for anything else.
 */
export function parseColumnMap(text: string): ColumnMap {
  const columns = { ...DEFAULT_COLUMNS };
  const seen = new Set<string>();
  for (const pair of text.split(',')) {
    const match = /^\s*([a-z]+)\s*=\s*(\S(?:.*\S)?)\s*$/.exec(pair);
    const logical = match?.[1] as LogicalColumn | undefined;
    if (match === null || logical === undefined || !LOGICAL_COLUMNS.includes(logical) || seen.has(logical)) {
      throw new Error(
        `--columns takes image=, question=, chosen= and rejected= with a column name each, separated by commas (such as image=img,question=prompt_text); got ${JSON.stringify(pair)}`,
      );
    }
    seen.add(logical);
    columns[logical] = match[2] ?? logical;
  }
  return columns;
}
