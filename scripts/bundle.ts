/**
 * The second half of `npm run build`: bundles each entry point the `rlaif-v` command runs (the CLI and the worker
 * modules) into one file beside tsc's output, `<name>.bundle.js`. Loading a few hundred ESM modules (yargs,
 * apache-arrow, hyparquet, the Hub client...) cost each of the four threads of a conversion a tenth of a second or
 * more; a bundle is one file to read and compile.
 *
 * Kept out of the bundles, loaded from node_modules as usual: sharp and @julusian/jpeg-turbo (native addons), parquet-wasm (reads its .wasm
 * beside itself) and piscina (starts its own worker module by path).
 *
 * Usage: node dist/scripts/bundle.js   (run from the repository root, after tsc)
 */
import { build } from 'esbuild';

const ENTRY_POINTS = ['dist/src/cli/main.js', 'dist/workers/convert-batch.js', 'dist/workers/write-splits.js', 'dist/workers/verify-images.js', 'dist/workers/read-parquet.js'];

await build({
  entryPoints: ENTRY_POINTS,
  outdir: 'dist',
  outbase: 'dist',
  entryNames: '[dir]/[name].bundle',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  // The bundles sit in the folders of their entry modules; every path is computed from the package's root, found
  // upward from wherever the code runs (src/util/paths.ts).
  external: ['sharp', 'parquet-wasm', 'piscina', '@julusian/jpeg-turbo'],
  // Some bundled CommonJS packages call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
