import { open, rm, type FileHandle } from 'node:fs/promises';
import {
  Compression,
  Table as WasmTable,
  WriterPropertiesBuilder,
  transformParquetStream,
  type RecordBatch as WasmRecordBatch,
} from 'parquet-wasm';
import { OutputError } from '../errors.js';
import { publishParquet } from './publish-parquet.js';

export interface ParquetSinkOptions {
  /** Rows per row group. */
  rowGroupSize: number;
  /** Key/value pairs for the footer (the Arrow schema metadata is carried by the batches themselves). */
  metadata: Map<string, string>;
  /**
   * Bytes a data page (and the dictionary page) may reach before the next one starts. Default about 1 MiB, as
   * parquet-rs and datasets write. pyarrow checks only every 1,024 values, so that its pages of images hold 1,024 of
   * them, and its dictionary page as many: about 150 MB each at RLAIF-V's sizes, which this makes as large.
   */
  pageBytes?: number;
}

/** parquet-rs's default page size (data and dictionary pages), which these files have always had. */
const DEFAULT_PAGE_BYTES = 2 ** 20;

/** `created_by` in every footer: fixed, so output bytes do not depend on anything but the data. */
const CREATED_BY = 'rlaif-v-convert (parquet-wasm 0.8.0)';

/**
 * A parquet file written incrementally from Arrow IPC streams with parquet-wasm's streaming writer, so memory is
 * bounded by one row group. The file appears at its final path only after `close()` has checked its footer.
 *
 * Output bytes depend only on the rows, not on how they were split into `write()` calls: the writer is told to
 * check page boundaries after every value (write batch size 1), which is what makes `--writer-batch-size` a pure
 * tuning knob.
 */
export class ParquetSink {
  readonly path: string;
  readonly #tmpPath: string;
  readonly #queue: WasmRecordBatch[] = [];
  #wake: (() => void) | null = null;
  #pulled: (() => void) | null = null;
  #closed = false;
  #failure: unknown = null;
  #pump: Promise<void>;
  #rows = 0;

  private constructor(path: string, file: FileHandle, options: ParquetSinkOptions) {
    this.path = path;
    this.#tmpPath = `${path}.partial`;
    // Per-column settings cannot reach nested columns through parquet-wasm (it makes a one-part column path of the
    // name), so every column gets pyarrow's defaults: dictionary encoding and statistics on.
    const properties = new WriterPropertiesBuilder()
      .setCompression(Compression.SNAPPY)
      .setDataPageSizeLimit(options.pageBytes ?? DEFAULT_PAGE_BYTES)
      .setDictionaryPageSizeLimit(options.pageBytes ?? DEFAULT_PAGE_BYTES)
      .setMaxRowGroupSize(options.rowGroupSize)
      .setWriteBatchSize(1)
      .setCreatedBy(CREATED_BY)
      .setKeyValueMetadata(options.metadata)
      .build();
    const input = new ReadableStream<WasmRecordBatch>(
      {
        pull: async (controller) => {
          while (this.#queue.length === 0 && !this.#closed) {
            await new Promise<void>((resolve) => {
              this.#wake = resolve;
            });
          }
          const next = this.#queue.shift();
          if (next === undefined) controller.close();
          else controller.enqueue(next);
          this.#pulled?.();
        },
      },
      { highWaterMark: 0 },
    );
    this.#pump = (async () => {
      try {
        const output = await transformParquetStream(input, properties);
        const reader = output.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await file.write(value as Uint8Array);
        }
      } finally {
        await file.close();
      }
    })().catch((error: unknown) => {
      this.#failure = error;
      this.#pulled?.();
    });
  }

  /** Opens `<path>.partial` for writing; `close()` renames it to `path`. */
  static async open(path: string, options: ParquetSinkOptions): Promise<ParquetSink> {
    const tmpPath = `${path}.partial`;
    const file = await open(tmpPath, 'w');
    return new ParquetSink(path, file, options);
  }

  /** Rows written so far. */
  get rows(): number {
    return this.#rows;
  }

  /** Appends the record batches of an Arrow IPC stream; resolves once the writer has taken them. */
  async write(ipc: Uint8Array): Promise<void> {
    this.#throwIfFailed();
    const table = WasmTable.fromIPCStream(ipc);
    const batches = table.recordBatches();
    table.free();
    for (const batch of batches) {
      this.#rows += batch.numRows;
      this.#queue.push(batch);
      this.#wake?.();
      while (this.#queue.length > 0 && this.#failure === null) {
        await new Promise<void>((resolve) => {
          this.#pulled = resolve;
        });
      }
      this.#throwIfFailed();
    }
  }

  /**
   * Finishes the file, checks that its footer holds every row written (parquet-wasm's streaming writer drops a batch
   * it cannot write without saying so) and moves it to its final path.
   *
   * @throws {OutputError} when the writer failed or the footer disagrees with the rows written.
   */
  async close(): Promise<{ rows: number }> {
    this.#closed = true;
    this.#wake?.();
    await this.#pump;
    this.#throwIfFailed();
    return publishParquet(this.#tmpPath, this.path, this.#rows);
  }

  /** Stops writing and removes the partial file. */
  async abort(): Promise<void> {
    this.#closed = true;
    for (const batch of this.#queue.splice(0)) batch.free();
    this.#wake?.();
    await this.#pump.catch(() => undefined);
    await rm(this.#tmpPath, { force: true });
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) {
      throw new OutputError('ERR_PARQUET_WRITE', `Could not write ${this.path}: ${String(this.#failure)}`, {
        cause: this.#failure,
      });
    }
  }
}
