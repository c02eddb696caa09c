import { Piscina } from 'piscina';

/** Node 20.17 and later load an ES module with require(); older ones do not know the flag (nor need it). */
const NO_REQUIRE_ESM = process.allowedNodeEnvironmentFlags.has('--experimental-require-module') ? ['--no-experimental-require-module'] : [];

/**
 * The pool of image workers. Its workers run without require() of ES modules, which piscina tries first to load a
 * worker's module: Node aborts the whole process (`FATAL ERROR: v8::Module::IsGraphAsync ...`, or
 * `v8::ToLocalChecked Empty MaybeLocal` in `CreateRequiredModuleFacade`) when a worker is terminated in the middle
 * of that, and a failed plan or a tiny run destroys the pool within milliseconds of making it. Without it, piscina
 * imports the module, which a termination interrupts safely.
 */
export function createPool<Task, Result>(options: ConstructorParameters<typeof Piscina>[0] & object): Piscina<Task, Result> {
  // Given execArgv, a worker inherits none of the process's and takes only Node's own options: V8's (such as the
  // --interrupt-budget bin.js sets) are the whole process's anyway, and Worker refuses them.
  const inherited = process.execArgv.filter((flag) => process.allowedNodeEnvironmentFlags.has(flag.split('=')[0] ?? flag));
  return new Piscina<Task, Result>({ ...options, execArgv: [...(options.execArgv ?? inherited), ...NO_REQUIRE_ESM] });
}
