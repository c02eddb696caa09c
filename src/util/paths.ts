import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Every path the program computes from where it is, in one place. `npm run build` makes two forms of the program: the
 * modules tsc writes (what the library, the tests and the bench import), in folders of `dist/`, and one bundle for
 * each entry point (`*.bundle.js`, made by `scripts/bundle.ts`), which the `rlaif-v` command runs. A module and the
 * bundle it ends up in sit at different depths, so nothing is computed relative to this module: the package's root is
 * the nearest folder above it that holds package.json (dist/ holds none), and every path is taken from the root.
 */

function findRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
  }
}

/** The package's root: the repository, or `node_modules/<package>` when installed. */
export const PACKAGE_ROOT = findRoot();

/** This package's package.json. */
export const PACKAGE_JSON = path.join(PACKAGE_ROOT, 'package.json');

/**
 * The CLI bundled into one file by `npm run build` (see scripts/bundle.ts), which the `rlaif-v` executable runs: it
 * starts faster than the modules it is made of.
 */
export const CLI_BUNDLE = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.bundle.js');

/** The `rlaif-v` executable's module (what a Slurm job runs). */
export const BIN_PATH = path.join(PACKAGE_ROOT, 'dist', 'src', 'bin.js');

/** libjpeg-turbo's decoder built to WebAssembly: the JPEG check (see wasm/jpeg-check.c). */
export const JPEG_CHECK_WASM = path.join(PACKAGE_ROOT, 'wasm', 'jpeg-check.wasm');

/** The folder of the benchmarks: their Python scripts (shipped, for `rlaif-v bench`), inputs made once (`.cache/`) and results (`results/`). */
export const BENCH_DIR = path.join(PACKAGE_ROOT, 'bench');

/** The Python scripts `rlaif-v bench` runs: the reference (TRL's script), the plain pyarrow + Pillow peer, and Pillow's check loop. */
export const BENCH_PYTHON = {
  reference: path.join(BENCH_DIR, 'reference.py'),
  plain: path.join(BENCH_DIR, 'plain.py'),
  limit: path.join(BENCH_DIR, 'limit.py'),
};

/** The single-core limit's module, which `rlaif-v bench` runs in a process of its own. */
export const SINGLE_CORE_LIMIT = path.join(PACKAGE_ROOT, 'dist', 'src', 'bench', 'single-core-limit.js');

/** The private Python virtualenv of the compatibility tests and the benchmarks (see src/bench/python-env.ts). */
export const PYTHON_ENV = path.join(PACKAGE_ROOT, 'node_modules', '.cache', 'rlaif-v-pyenv');

/** The built modules whose code decides what an image is found to be (their hash keys the cache's verdicts). */
export const VERDICT_MODULES = ['prepare-image.js', 'check-jpeg.js', 'check-png.js', 'image-header.js', 'turbo-jpeg.js'].map((name) => path.join(PACKAGE_ROOT, 'dist', 'src', 'image', name));

/**
 * Where a worker thread's entry module is (`workers/<name>.ts`, built). Code inside a bundle starts its workers from
 * their bundles, so every thread loads one file rather than a few hundred modules.
 */
export function workerUrl(name: 'convert-batch' | 'write-splits' | 'verify-images' | 'read-parquet'): URL {
  const bundled = import.meta.url.endsWith('.bundle.js');
  return pathToFileURL(path.join(PACKAGE_ROOT, 'dist', 'workers', `${name}${bundled ? '.bundle' : ''}.js`));
}
