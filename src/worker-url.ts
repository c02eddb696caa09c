/**
 * Where a worker module is. `npm run build` makes two forms of the program: the modules tsc writes (what the library,
 * the tests and the bench import) and, beside them, one bundle for each entry point (`*.bundle.js`, made by
 * `scripts/bundle.ts`), which the `rlaif-v` command runs. Code inside a bundle starts its workers from their bundles,
 * so every thread loads one file rather than a few hundred modules.
 */
export function workerUrl(name: 'convert-batch' | 'write-splits' | 'verify-images' | 'read-parquet'): URL {
  const bundled = import.meta.url.endsWith('.bundle.js');
  return new URL(`../workers/${name}${bundled ? '.bundle' : ''}.js`, import.meta.url);
}
