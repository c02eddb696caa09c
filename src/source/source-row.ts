/** A source row as read, and the stable codes of rows that cannot be converted (with the row kept whole). */

export interface SourceImages {
  bytes: (Uint8Array | null)[];
  paths: (string | null)[];
}

export interface SourceImage {
  bytes: Uint8Array | null;
  path: string | null;
}

/** A source row exactly as read, kept whole so a rejected row can be written out unchanged. */
export interface SourceRow {
  ds_name: string | null;
  image: SourceImage | null;
  question: string | null;
  chosen: string | null;
  rejected: string | null;
  origin_dataset: string | null;
  origin_split: string | null;
  idx: string | null;
  image_path: string | null;
}

/** Stable codes for rows that could not be converted. */
export type RejectCode =
  | 'missing_image'
  | 'empty_image'
  | 'unsupported_image'
  | 'corrupt_image'
  | 'image_too_large'
  | 'missing_text'
  | 'empty_text'
  | 'worker_failed'
  | 'image_timeout';

export interface RejectedRow {
  /** Global row index. */
  index: number;
  code: RejectCode;
  message: string;
  row: SourceRow;
}
