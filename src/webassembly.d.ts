/**
 * The part of the WebAssembly JavaScript API that src/image/check-jpeg.ts and src/parquet/file-output.ts (page-aligned memory) use. TypeScript declares it only in the DOM
 * library, which this project does not load (it would bring browser globals into Node code).
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
    static imports(module: Module): { module: string; name: string; kind: string }[];
  }
  class Instance {
    constructor(module: Module, imports: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    /** `initial` in pages of 64 KiB. */
    constructor(descriptor: { initial: number; maximum?: number });
    readonly buffer: ArrayBuffer;
  }
}
