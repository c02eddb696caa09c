/** The messages of verify's pool of image checkers (src/verify/rows.ts, workers/verify-images.ts). */

/** A row group's images for `verify` to check: one per row (null where a row has none), from row `firstRow` of its file. */
export interface VerifyImagesTask {
  firstRow: number;
  images: (Uint8Array | null)[];
}

/** The rows (of their file) whose image does not decode, and why. */
export interface VerifyImagesResult {
  bad: { row: number; message: string }[];
}
