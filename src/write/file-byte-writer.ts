import { crc32 } from 'node:zlib';
import { ByteWriter } from 'hyparquet-writer';
import type { FileOutput } from '../parquet/file-output.js';

/** Arrays at least this large skip the writer's buffer. */
const DIRECT_WRITE_BYTES = 2 ** 16;

/**
 * A ByteWriter that empties itself into a file whenever it holds more than `flushAt` bytes, keeping the CRC-32 of
 * everything it wrote (what a resumed run checks a kept file against).
 */
export class FileByteWriter extends ByteWriter {
  readonly #output: FileOutput;
  readonly #flushAt: number;
  /** CRC-32 of the bytes written to the file so far. */
  crc = 0;

  constructor(output: FileOutput, flushAt = 8 * 2 ** 20) {
    super(flushAt + 2 ** 20);
    this.#output = output;
    this.#flushAt = flushAt;
  }

  #write(bytes: Uint8Array): void {
    this.#output.write(bytes, this.offset - this.index);
    this.crc = crc32(bytes, this.crc);
  }

  override ensure(size: number): void {
    if (this.index + size > this.#flushAt) this.flush();
    super.ensure(size);
  }

  /** Large arrays (a page of images) go to the file as they are, rather than being copied into the buffer first. */
  override appendBytes(value: Uint8Array): void {
    if (value.byteLength < DIRECT_WRITE_BYTES) {
      super.appendBytes(value);
      return;
    }
    this.flush();
    this.#write(value);
    this.offset += value.byteLength;
  }

  flush(): void {
    this.#write(new Uint8Array(this.buffer, 0, this.index));
    this.index = 0;
  }

  override finish(): void {
    this.flush();
  }
}
