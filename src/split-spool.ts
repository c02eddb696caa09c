import { open, type FileHandle } from 'node:fs/promises';
import type { SplitPart } from './types.js';

interface Frame {
  offset: number;
  length: number;
  rows: number;
}

/**
 * Rows of one split held on disk, in order, until the split's total size is known: the number of output shards
 * depends on it (`datasets` cuts `floor(bytes / max_shard_size) + 1` contiguous shards). Frames are the workers' Arrow
 * IPC streams as they came; the index of frames stays in memory.
 */
export class SplitSpool {
  readonly path: string;
  readonly #file: FileHandle;
  readonly #frames: Frame[] = [];
  #size = 0;
  #rows = 0;
  #nbytes = 0;

  private constructor(path: string, file: FileHandle) {
    this.path = path;
    this.#file = file;
  }

  static async open(path: string): Promise<SplitSpool> {
    return new SplitSpool(path, await open(path, 'w+'));
  }

  get rows(): number {
    return this.#rows;
  }

  /** Uncompressed size of the rows, as `datasets` measures a split. */
  get nbytes(): number {
    return this.#nbytes;
  }

  async append(part: SplitPart): Promise<void> {
    await this.#file.write(part.ipc, 0, part.ipc.byteLength, this.#size);
    this.#frames.push({ offset: this.#size, length: part.ipc.byteLength, rows: part.rows });
    this.#size += part.ipc.byteLength;
    this.#rows += part.rows;
    this.#nbytes += part.nbytes;
  }

  /** The frames in order, each read from disk as it is reached. */
  async *frames(): AsyncGenerator<{ ipc: Uint8Array; rows: number }> {
    for (const frame of this.#frames) {
      const ipc = new Uint8Array(frame.length);
      await this.#file.read(ipc, 0, frame.length, frame.offset);
      yield { ipc, rows: frame.rows };
    }
  }

  async close(): Promise<void> {
    await this.#file.close();
  }
}
