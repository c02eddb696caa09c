/**
 * What the Python tests install beside datasets into the private virtualenv (src/bench/python-env.ts), from wheels on
 * disk and without network: TRL's data utilities, and torch (the CPU build) with accelerate for DPOTrainer. Each
 * gives null when installed, else why not (the test then skips and says so). Tests run one file at a time, so two
 * installs never race.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { findWheels, pipInstall, run, WHEEL_DIRS } from '../../src/bench/python-env.js';

/** TRL's data utilities need transformers but not torch: trl goes in without its dependencies (accelerate needs torch). */
export async function installTrl(python: string): Promise<string | null> {
  const ok = await run(python, ['-c', 'import trl.data_utils, transformers, jinja2']).then(
    () => true,
    () => false,
  );
  if (ok) return null;
  const wheels = await findWheels();
  if (wheels === null) return 'no wheels on disk';
  try {
    await pipInstall(wheels, ['transformers', 'tokenizers', 'jinja2']);
    await pipInstall(wheels, ['trl'], { noDeps: true });
    await run(python, ['-c', 'import trl.data_utils']);
    return null;
  } catch (error) {
    return `could not install trl and transformers from ${wheels}: ${(error as Error).message.split('\n')[0] ?? ''}`;
  }
}

/**
 * torch (the CPU build) and accelerate, for TRL's DPOTrainer: torch from a `+cpu` wheel on disk (its only
 * dependencies are small pure-Python ones; a plain torch wheel would pull in the GPU stack), the rest from the
 * same wheel folders.
 */
export async function installTorch(python: string): Promise<string | null> {
  const ok = await run(python, ['-c', 'import torch, accelerate, trl']).then(
    () => true,
    () => false,
  );
  if (ok) return null;
  const installed = await installTrl(python);
  if (installed !== null) return installed;
  let wheel: string | null = null;
  for (const dir of WHEEL_DIRS) {
    const name = (await readdir(dir).catch(() => [] as string[])).find((file) => /^torch-[^-]+\+cpu-cp311-.*\.whl$/.test(file));
    if (name !== undefined) wheel = path.join(dir, name);
  }
  if (wheel === null) return `no CPU build of torch for Python 3.11 in ${WHEEL_DIRS.join(', ')}`;
  try {
    await pipInstall(WHEEL_DIRS, [wheel, 'accelerate']);
    await run(python, ['-c', 'import torch, accelerate; from trl import DPOTrainer']);
    return null;
  } catch (error) {
    return `could not install torch and accelerate: ${(error as Error).message.split('\n')[0] ?? ''}`;
  }
}
