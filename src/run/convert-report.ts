import type { AssembleCounts } from '../write/assemble-split.js';
import type { DuplicateInput } from '../plan/list-inputs.js';
import type { Leftover } from '../dirs/publish-output.js';
import type { PartRange } from '../plan/plan-units.js';
import type { ColumnMap } from '../source/source-layout.js';
import type { SourceCard } from '../hub/source-card.js';
import type { DownloadEvent } from '../hub/background-downloads.js';
import type { ThreadsCpu } from '../util/measure-cpu.js';
import type { WrittenShard } from '../write/split-writer.js';

/** What a conversion reports: the shapes of `report.json` and of the progress events. */

import type { SplitName } from '../output/splits.js';

export type { SplitName };

export interface SplitReport {
  rows: number;
  /** Uncompressed bytes, as `datasets` counts them (the card's `num_bytes`). */
  numBytes: number;
  files: WrittenShard[];
  /** True when the shard layout planned up front did not hold and the shards were cut again at the end. */
  resharded: boolean;
}

/** What a run did, written to `report.json` and returned by {@link convert}. */
export interface ConvertReport {
  tool: { name: string; version: string };
  /** False when more rows were rejected than `maxRejectFraction` allows. */
  ok: boolean;
  /**
   * SHA-256 of the input (files' names, sizes, rows and footers) and of the options that shape the data: runs with the
   * same fingerprint write the same data files and card, whatever the worker count or batch size (see run-fingerprint).
   */
  fingerprint: string;
  input: {
    /** The Hub dataset read, when the input came from the Hub. */
    dataset?: { repo: string; revision: string; commit: string; filesDownloaded: number };
    files: { path: string; rows: number; bytes: number; rowGroups: number; footerSha256: string }[];
    /** Files given more than once, read only at their first place. */
    duplicates?: DuplicateInput[];
    /** What the source's own dataset card says, which the output's card carries on; absent when none was found. */
    card?: SourceCard;
    rows: number;
    bytes: number;
  };
  output: { dir: string; rows: number; bytes: number; splits: Partial<Record<SplitName, SplitReport>> };
  rejected: { rows: number; fraction: number; byCode: Record<string, number>; file: string | null };
  /**
   * Set when the run took up an interrupted one's work: the input rows it found already done (written, or rejected)
   * at the checkpoint, which this run did not convert again; or, with `resumed` false, why the work could not be used.
   */
  resume?: { resumed: true; rowsReused: number } | { resumed: false; reason: string };
  /**
   * Images kept byte for byte and re-encoded (counted per row); distinct images, and rows whose image has the bytes of
   * an earlier row's (`repeated`: rows with an image less `distinct`); images decoded in this run (`validated`) and
   * taken from the cache of earlier runs (`fromCache`), which depend on what the cache held and, a little, on which
   * worker got to a repeated image first.
   */
  images: { kept: number; reencoded: number; distinct: number; repeated: number; validated: number; fromCache: number; bytesIn: number };
  /** Wall-clock seconds of each stage; `images` and `format` add up the workers' time. */
  /**
   * Image data read and not yet written (in the reader, the workers, and the writer's queue and row groups): the
   * budget (`--max-bytes-in-flight`) and the most held at once. Memory is about this plus a fixed cost.
   */
  memory?: { maxBytesInFlight: number; peakBytesInFlight: number };
  seconds: { plan: number; convert: number; read: number; images: number; format: number; write: number; total: number };
  /**
   * Where the time went: the main thread's busy fraction (event loop not idle) while converting and writing, and CPU
   * seconds of the main thread and of the whole process (workers and image threads included). `mainThread` is null
   * where the platform does not tell a thread's CPU time. Where it does (Linux), `threads` splits the process's CPU
   * since it started: the main thread, each worker, and the busiest other thread (V8's collector and compiler, libuv's
   * file I/O, libvips), so a serial stage that would cap more cores shows.
   */
  cpu: { mainThreadBusy: number; mainThread: number | null; process: number; threads?: ThreadsCpu };
  /**
   * Set in the report of one part of a multi-machine run (`convert --num-shards`): the input rows it converted and the
   * host it ran on, and the output it is a part of. Its `output` holds the part's pieces of the shards (in the part's
   * directory), its `rejected` and `images` its own rows.
   */
  part?: PartRange & { host: string; output: string };
  /** Set by `finalize`: each part's figures, in order. */
  parts?: PartFigures[];
  /** Set by `finalize`: what putting the parts together cost, and how the rows got into the shards. */
  finalize?: { id?: string; seconds: number; rows: AssembleCounts };
  options: {
    numProc: number;
    writerBatchSize: number;
    testSize: number;
    seed: number;
    images: string;
    quality: number;
    maxSide: number | null;
    maxPixels: number;
    maxShardSize: number;
    maxRejectFraction: number;
    onBadImage: string;
    /** The columns read as the image and the texts, when they were not the usual ones (`--columns`). */
    columns?: ColumnMap;
  };
}

/** One part's figures in the report `finalize` writes. */
export interface PartFigures {
  index: number;
  host: string;
  firstRow: number;
  endRow: number;
  rowsOut: number;
  rowsRejected: number;
  /** Wall-clock seconds of the part's run (the last one, when it was taken up after a crash), and its planning. */
  seconds: { total: number; plan: number };
  /** CPU seconds of the part's process. */
  cpu: number;
  resume?: ConvertReport['resume'];
}

export type ConvertEvent =
  | { type: 'source'; repo: string; revision: string; commit: string; files: number; cachedFiles: number; bytes: number; cachedBytes: number }
  | DownloadEvent
  /** `part`: the rows this run converts, when it is one part of a multi-machine run. */
  | { type: 'planned'; files: number; rows: number; trainRows: number; testRows: number; workers: number; part?: PartRange }
  /** This part of a multi-machine run was finished by an earlier run: nothing to do. */
  | { type: 'part-finished'; staging: string }
  /** An input file given more than once: read only once, at its first place. */
  | { type: 'duplicate-input'; duplicate: DuplicateInput }
  /** What a run killed while publishing the output left, finished: an output it was replacing removed, or its finished output put in place. */
  | { type: 'leftover'; leftover: Leftover }
  /**
   * An interrupted run's staging directory was found: taken up from its checkpoint (`rowsReused` input rows found
   * done, not read again), or started over, and why.
   */
  | { type: 'resume'; resumed: true; staging: string; rowsReused: number }
  | { type: 'resume'; resumed: false; staging: string; reason: string }
  /** Rows done; `bytes`, the input's bytes (uncompressed) those rows hold, where the stage knows them. */
  | { type: 'progress'; stage: 'convert' | 'write'; done: number; total: number; bytes?: { done: number; total: number } }
  | { type: 'done'; report: ConvertReport };
