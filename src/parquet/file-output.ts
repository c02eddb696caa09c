import { closeSync, constants, ftruncateSync, openSync, readSync, statfsSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * A file written front to back, around the page cache where the filesystem allows it (Linux's O_DIRECT on ext4, xfs
 * and btrfs), through the page cache elsewhere.
 *
 * Why: an output is as large as its input (13 GB for RLAIF-V), written once and not read again by this run. Through the
 * page cache, each gigabyte cost 0.7 to 1.8 s of system time here (the copy, and reclaiming the cache the input and
 * output fill), most of a full-size run's system time: writing 12.8 GB took 22.5 s of it, against 0.8 s with O_DIRECT
 * (and the output no longer pushes the input, or the user's other files, out of the cache). O_DIRECT needs the memory,
 * the file offset and the length of each write aligned to the device's block: the bytes are gathered in a staging area
 * of wasm memory (page-aligned) and written in whole blocks; the last, partial block is written padded and the file
 * cut back to its length. Anything the filesystem refuses (EINVAL) turns the file back to ordinary writes, from the
 * bytes not yet written: the file is the same either way.
 */

/** Alignment of every direct write: the largest logical block size in common use. */
const ALIGN = 4096;
/** Bytes gathered before they are written. */
const STAGE_BYTES = 8 * 2 ** 20;
/** statfs types of the filesystems O_DIRECT is used on: ext2/3/4, xfs, btrfs. */
const DIRECT_FILESYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e]);

/** Whether writes to files in `dir` go around the page cache (see FileOutput). */
export function directWritesIn(dir: string): boolean {
  if (process.platform !== 'linux' || constants.O_DIRECT === undefined) return false;
  try {
    return DIRECT_FILESYSTEMS.has(Number(statfsSync(dir).type));
  } catch {
    return false;
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}

function isCode(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException).code === code;
}

export class FileOutput {
  /** The file opened as usual: for reading back, cutting to length, and ordinary writes. */
  readonly fd: number;
  #direct: number | null;
  /** The staging area: `#staged` bytes that belong at file offset `#stageStart` (a multiple of ALIGN). */
  #stage: Uint8Array | null;
  #stageStart = 0;
  #staged = 0;
  #closed = false;

  private constructor(fd: number, direct: number | null, start: number) {
    this.fd = fd;
    this.#direct = direct;
    try {
      this.#stage = direct === null ? null : new Uint8Array(new WebAssembly.Memory({ initial: Math.ceil((STAGE_BYTES + ALIGN) / 65536) }).buffer, 0, STAGE_BYTES);
      if (direct !== null && start > 0) this.#resumeAt(start);
    } catch (error) {
      if (direct !== null) closeSync(direct);
      closeSync(fd);
      throw error;
    }
  }

  /**
   * Opens `file` to write from offset `start`: a new empty file (flags 'w', `start` 0), or an existing one, which is cut
   * to `start` bytes first (flags 'r+'). `direct: false` never goes around the page cache.
   */
  static open(file: string, flags: 'w' | 'r+', start = 0, options: { direct?: boolean } = {}): FileOutput {
    const fd = openSync(file, flags);
    try {
      if (flags === 'r+') ftruncateSync(fd, start);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    let direct: number | null = null;
    if (options.direct !== false && directWritesIn(path.dirname(file))) {
      try {
        direct = openSync(file, constants.O_WRONLY | (constants.O_DIRECT ?? 0));
      } catch {
        direct = null; // the filesystem said no: ordinary writes
      }
    }
    return new FileOutput(fd, direct, start);
  }

  /** Whether writes go around the page cache (until the filesystem refuses one). */
  get direct(): boolean {
    return this.#direct !== null;
  }

  /** Takes up a file cut to `start` bytes: its last partial block is read back, to be written again whole. */
  #resumeAt(start: number): void {
    const stage = this.#stage;
    if (stage === null) return;
    this.#stageStart = start - (start % ALIGN);
    this.#staged = start - this.#stageStart;
    for (let done = 0; done < this.#staged; ) {
      const read = readSync(this.fd, stage, done, this.#staged - done, this.#stageStart + done);
      if (read === 0) throw new Error(`the file ends before byte ${start}, where it was to be taken up`);
      done += read;
    }
  }

  /** Writes `bytes` at `position`, which must follow the bytes written before. */
  write(bytes: Uint8Array, position: number): void {
    const stage = this.#stage;
    if (stage === null) {
      writeAll(this.fd, bytes, position);
      return;
    }
    if (position !== this.#stageStart + this.#staged) throw new Error(`a write at ${position}, not at ${this.#stageStart + this.#staged} where the file ends`);
    for (let at = 0; at < bytes.byteLength; ) {
      const take = Math.min(bytes.byteLength - at, stage.byteLength - this.#staged);
      stage.set(bytes.subarray(at, at + take), this.#staged);
      this.#staged += take;
      at += take;
      if (this.#staged === stage.byteLength) this.#drain(false);
      if (this.#stage === null) {
        // The filesystem refused a direct write: the rest goes as usual.
        writeAll(this.fd, bytes.subarray(at), position + at);
        return;
      }
    }
  }

  /** Every byte written so far is in the file (the last block padded, when written around the cache). */
  sync(): void {
    this.#drain(true);
  }

  /** Writes what is left and cuts the file to `length`, its end (a padded last block, or one written before, goes). */
  finish(length: number): void {
    this.#drain(true);
    ftruncateSync(this.fd, length);
  }

  /** Closes the file (again: nothing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#direct !== null) closeSync(this.#direct);
    this.#direct = null;
    this.#stage = null;
    closeSync(this.fd);
  }

  /** Writes the whole blocks staged; with `all`, the partial last one too (padded), which stays staged to be rewritten. */
  #drain(all: boolean): void {
    const stage = this.#stage;
    if (stage === null || this.#direct === null) return;
    const whole = this.#staged - (this.#staged % ALIGN);
    const length = all ? Math.ceil(this.#staged / ALIGN) * ALIGN : whole;
    if (length === 0) return;
    stage.fill(0, this.#staged, length);
    try {
      for (let done = 0; done < length; ) {
        const wrote = writeSync(this.#direct, stage, done, length - done, this.#stageStart + done);
        if (wrote % ALIGN !== 0) throw Object.assign(new Error('a short direct write'), { code: 'EINVAL' });
        done += wrote;
      }
    } catch (error) {
      if (!isCode(error, 'EINVAL')) throw error;
      this.#fallBack();
      return;
    }
    stage.copyWithin(0, whole, this.#staged);
    this.#stageStart += whole;
    this.#staged -= whole;
  }

  /** The filesystem refused a direct write: what is staged is written as usual, and so is everything after it. */
  #fallBack(): void {
    const stage = this.#stage;
    if (stage !== null) writeAll(this.fd, stage.subarray(0, this.#staged), this.#stageStart);
    if (this.#direct !== null) closeSync(this.#direct);
    this.#direct = null;
    this.#stage = null;
  }
}
