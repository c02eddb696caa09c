/**
 * A private Python virtualenv with `datasets`, `pyarrow` and `pillow`, installed from wheels on disk without network,
 * shared by the compatibility test and the reference benchmark. Made once under node_modules/.cache and reused.
 */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PYTHON_ENV } from '../util/paths.js';

export const run = promisify(execFile);

/** Where wheels may be: RLAIF_V_WHEELS first, then the folders these machines keep them in. */
export const WHEEL_DIRS = [process.env.RLAIF_V_WHEELS, '/opt/pypi/files', '/opt/wheels'].filter(
  (dir): dir is string => dir !== undefined && dir !== '',
);
export const VENV = PYTHON_ENV;
export const VENV_PYTHON = path.join(VENV, 'bin', 'python');

async function succeeds(command: string, args: string[]): Promise<boolean> {
  return run(command, args).then(
    () => true,
    () => false,
  );
}

/** The first wheel folder holding datasets and pyarrow, or null. */
export async function findWheels(): Promise<string | null> {
  for (const dir of WHEEL_DIRS) {
    const names = await readdir(dir).catch(() => [] as string[]);
    if (names.some((name) => name.startsWith('datasets-')) && names.some((name) => name.startsWith('pyarrow-'))) return dir;
  }
  return null;
}

/** Installs `packages` into the virtualenv from the wheel folder(s); throws with pip's first line of error. */
export async function pipInstall(wheels: string | string[], packages: string[], options: { noDeps?: boolean } = {}): Promise<void> {
  const links = (Array.isArray(wheels) ? wheels : [wheels]).flatMap((dir) => ['--find-links', dir]);
  await run(
    VENV_PYTHON,
    ['-m', 'pip', 'install', '--quiet', '--no-index', ...links, ...(options.noDeps === true ? ['--no-deps'] : []), ...packages],
    { maxBuffer: 64 * 1024 * 1024 },
  );
}

/** The virtualenv's python with datasets, PIL and pyarrow importable, made if needed; or why it cannot be made. */
export async function pythonWithDatasets(): Promise<{ python: string } | { skip: string }> {
  if (await succeeds(VENV_PYTHON, ['-c', 'import datasets, PIL, pyarrow'])) return { python: VENV_PYTHON };
  if (!(await succeeds('python3', ['--version']))) return { skip: 'python3 is not installed' };
  const wheels = await findWheels();
  if (wheels === null) return { skip: `no wheels of datasets and pyarrow in ${WHEEL_DIRS.join(', ')} (set RLAIF_V_WHEELS)` };
  try {
    await run('python3', ['-m', 'venv', '--clear', VENV]);
    await pipInstall(wheels, ['datasets', 'pyarrow', 'pillow']);
    return { python: VENV_PYTHON };
  } catch (error) {
    return { skip: `could not install datasets from ${wheels} into a virtualenv: ${(error as Error).message.split('\n')[0] ?? ''}` };
  }
}
