import type { ImageMode } from '../image/image-policy.js';
import type { ConvertReport } from '../run/convert-report.js';

/** What `rlaif-v bench` measures and records (bench/results/<timestamp>.json), and renders (render-results.ts). */

/** Where the bench tells what it is doing, a line at a time. */
export type Log = (line: string) => void;

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface BenchRun {
  seconds: number;
  rowsPerSecond: number;
  peakRssMB: number;
  report: ConvertReport;
}

export interface BenchPoint {
  numProc: number;
  batchSize: number;
  rowsPerSecond: Spread;
  mbPerSecond: Spread;
  peakRssMB: Spread;
  /** Median over runs of the main thread's busy fraction while converting and writing. */
  mainThreadBusy: number;
  /** CPU seconds of everything but the main thread, per worker (median run). */
  cpuPerWorker: number;
  /** Seconds per stage of the median run: main-thread read, summed worker image and format time, write. */
  stages: { read: number; images: number; format: number; write: number };
  /** rows/s ÷ (workers × single-core limit). */
  efficiency: number;
  /**
   * CPU of the median run, in ms a row: the whole process since it started; the main thread while converting (its
   * share that grows with the rows; `mainStartup` is the seconds it spent before, loading modules and planning); and
   * the busiest thread that is neither main nor a worker, since it started (null without /proc). `ceilings` are the
   * rows/s each of those two single threads would allow if nothing else limited the run: what caps a machine with
   * many more cores.
   */
  cpuMsPerRow: { process: number; main: number; mainStartup: number; busiestOther: number } | null;
  ceilings: { main: number; busiestOther: number } | null;
  runs: { seconds: number; rowsPerSecond: number; peakRssMB: number }[];
}

export interface ModeRun {
  images: ImageMode;
  quality: number;
  /** `--max-side`, when the mode shrinks images. */
  maxSide?: number;
  numProc: number;
  batchSize: number;
  rowsPerSecond: number;
}

export interface BenchResults {
  date: string;
  command: string;
  machine: { cores: number; cpuModel: string; memoryGB: number; node: string; sharp: string; libvips: string; platform: string };
  input: { path: string; rows: number; bytes: number; files: number; generated: boolean };
  options: { images: ImageMode; quality: number; repeats: number; numProcs: number[]; batchSizes: number[] };
  /**
   * The single-core limit: `imagesPerSecond` is this tool's own check in a bare loop; `pillow` (when Python is
   * there) is Pillow checking the same images at libjpeg-turbo speed (bench/limit.py), which efficiency is measured
   * against when present.
   */
  limit: { images: ImageMode; imagesPerSecond: number; pillow: number | null; kinds?: ImageKindCost[] };
  points: BenchPoint[];
  best: { numProc: number; batchSize: number; rowsPerSecond: number; efficiency: number };
  /** CPU a row and serial-stage ceilings at the best point. */
  bestFigures: { cpuMsPerRow: BenchPoint['cpuMsPerRow']; ceilings: BenchPoint['ceilings'] };
  scaling: { numProc: number; batchSize: number; ratio: number };
  modes: ModeRun[];
  reference: { datasetsVersion: string; runs: { numProc: number; rowsPerSecond: number; seconds: number; peakRssMB: number }[]; best: number; note: string } | null;
  /** The plain pyarrow + Pillow peer (bench/plain.py), one process per core, in keep and JPEG quality 75 modes. */
  plain: PlainRun[] | null;
}

/** What one kind of image costs this tool's check on one core (the limit loop, by kind). */
export interface ImageKindCost {
  kind: 'jpeg-baseline' | 'jpeg-progressive' | 'png' | 'other';
  images: number;
  msPerImage: number;
}

export interface PlainRun {
  images: 'keep' | 'jpeg';
  /** `--max-side` (Pillow's draft and thumbnail), when the run shrinks images. */
  maxSide?: number;
  numProc: number;
  rowsPerSecond: number;
  cpuMsPerRow: number;
  peakRssMB: number;
}
