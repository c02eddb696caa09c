/** How images are treated: `keep` passes already-normal images through byte for byte. */
export type ImageMode = 'keep' | 'jpeg' | 'png' | 'webp';

export interface ImagePolicy {
  mode: ImageMode;
  /** Encoder quality for `jpeg` and `webp` output (1-100). */
  quality: number;
  /** Longest side in pixels; larger images are shrunk keeping the aspect ratio. `null`: no limit. */
  maxSide: number | null;
  /** Images with more pixels than this are refused before they are decoded (a decompression-bomb guard). */
  maxPixels: number;
}
