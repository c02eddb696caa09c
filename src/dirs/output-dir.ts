import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { OutputError } from '../errors.js';
import { packageInfo } from '../util/package-info.js';
import { finishPublishing, type Leftover } from './publish-output.js';
import { lstats, stagingDir, stats } from './staging.js';
import { markedOutput, readMarker } from './tool-marker.js';

/**
 * The output directory's safety rules. A conversion writes into `<output>.partial` beside the output and moves it into
 * place at the end; `--overwrite` replaces only what this tool made. The tool removes, empties, moves or takes up a
 * directory only when it carries this tool's marker saying what it was made as, under the name it has (see
 * tool-marker): never for its name alone. Anything else in the way is refused before any work.
 */

/** `target` with symbolic links resolved, as far as it exists; the missing rest appended as given. */
async function resolvedPath(target: string): Promise<string> {
  const absolute = path.resolve(target);
  try {
    return await realpath(absolute);
  } catch {
    const parent = path.dirname(absolute);
    return parent === absolute ? absolute : path.join(await resolvedPath(parent), path.basename(absolute));
  }
}

/** The nearest of `dir` and its parents that exists. */
async function existingAncestor(dir: string): Promise<{ path: string; info: import('node:fs').Stats }> {
  for (let at = dir; ; at = path.dirname(at)) {
    const info = await stats(at);
    if (info !== null || path.dirname(at) === at) return { path: at, info: info ?? (await stat(at)) };
  }
}

/** Whether `inner` is `outer` or lies inside it. */
function within(inner: string, outer: string): boolean {
  const relative = path.relative(outer, inner);
  return relative === '' || (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative));
}

/**
 * Whether `dir` is an output of this tool under the name it has: its marker says it was published as that name, or
 * (an output of an older version, from before markers) it holds a report.json written by this tool.
 */
export async function isOurOutput(dir: string): Promise<boolean> {
  if ((await markedOutput(dir)) !== null) return true;
  if ((await readMarker(dir)) !== null) return false; // a marker of something else, or of an output renamed since
  // An output of a version before markers: its report names this very directory (a report copied elsewhere does not).
  try {
    const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as { tool?: { name?: unknown }; output?: { dir?: unknown } };
    return report.tool?.name === packageInfo.name && report.output?.dir === path.resolve(dir);
  } catch {
    return false;
  }
}

/** Whether one of two paths is or lies inside the other, links resolved. */
export async function overlaps(a: string, b: string): Promise<boolean> {
  const [first, second] = [await resolvedPath(a), await resolvedPath(b)];
  return within(first, second) || within(second, first);
}

/**
 * Checks that `dirs` (what a run may write, remove or take up: the output, its staging directory, the cache) are
 * apart from every input: none is an input, holds one or lies inside an input directory.
 *
 * @throws {OutputError} `ERR_OUTPUT_OVERLAPS_INPUT` (exit 2) naming both.
 */
export async function checkApartFromInputs(dirs: readonly { path: string; what: string }[], inputs: readonly string[]): Promise<void> {
  for (const input of inputs) {
    const inputPath = await resolvedPath(input);
    const inputIsDir = (await stats(inputPath))?.isDirectory() ?? false;
    for (const dir of dirs) {
      const resolved = await resolvedPath(dir.path);
      if (within(inputPath, resolved) || (inputIsDir && within(resolved, inputPath))) {
        throw new OutputError(
          'ERR_OUTPUT_OVERLAPS_INPUT',
          `${dir.what} ${dir.path} ${within(inputPath, resolved) ? (inputPath === resolved ? 'is' : 'holds') : 'lies inside'} the input ${input}: ` +
            'write the dataset to a directory apart from its source.',
        );
      }
    }
  }
}

/**
 * Checks `--output` before any work is done and returns its absolute path: where it is (not a file, not the working
 * directory), apart from the input (it and its staging directory), and, when it exists, that it may be replaced.
 * Finishes first what a run killed while publishing left (see {@link finishPublishing}); `finish` hears of it, and with
 * `allowFinished`, an output put in place so is returned unchecked (the caller compares it with what it would make).
 *
 * @throws {OutputError} (exit 2) `ERR_OUTPUT_IS_FILE` for an existing file; `ERR_OUTPUT_OVERLAPS_INPUT` when the output
 * or its staging directory is an input, holds one or lies inside an input directory; `ERR_OUTPUT_HOLDS_CWD` for the
 * working directory or a parent of it; `ERR_OUTPUT_EXISTS` for an existing directory without `overwrite`;
 * `ERR_OUTPUT_NOT_OURS` for a non-empty directory this tool did not write, even with `overwrite`.
 */
export async function checkOutputDir(
  output: string,
  options: { overwrite: boolean; inputs: readonly string[]; finish?: (leftover: Leftover) => void; allowFinished?: boolean },
): Promise<string> {
  const absolute = path.resolve(output);
  const resolved = await resolvedPath(absolute);
  const link = await lstats(absolute);
  if (link?.isSymbolicLink() === true) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `--output ${absolute} is a symbolic link: give the directory itself (or another output), so that nothing but it is replaced.`);
  }
  const info = await stats(absolute);
  if (info !== null && !info.isDirectory()) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `--output ${absolute} is a file, not a directory: choose a directory to write the dataset into.`);
  }
  const ancestor = await existingAncestor(path.dirname(absolute));
  if (!ancestor.info.isDirectory()) {
    throw new OutputError('ERR_OUTPUT_IS_FILE', `--output ${absolute} cannot be made: ${ancestor.path} is a file, not a directory.`);
  }
  await checkApartFromInputs(
    [
      { path: absolute, what: '--output' },
      { path: stagingDir(absolute), what: 'The staging directory of --output,' },
    ],
    options.inputs,
  );
  if (within(await resolvedPath(process.cwd()), resolved)) {
    throw new OutputError(
      'ERR_OUTPUT_HOLDS_CWD',
      `--output ${absolute} is the working directory or a parent of it: choose a new directory for the dataset, such as ./rlaif-v.`,
    );
  }
  const finished = await finishPublishing(absolute);
  for (const leftover of finished) options.finish?.(leftover);
  if ((await stats(absolute)) === null) return absolute;
  // An output a killed run had finished, put in place just now: the caller sees whether it is the one it would make.
  if (options.allowFinished === true && finished.some((leftover) => leftover.action === 'restored')) return absolute;
  if (!options.overwrite) {
    throw new OutputError('ERR_OUTPUT_EXISTS', `${absolute} already exists. Replace it with the overwrite option (--overwrite), or choose another output.`);
  }
  if ((await readdir(absolute)).length > 0 && !(await isOurOutput(absolute))) {
    throw new OutputError(
      'ERR_OUTPUT_NOT_OURS',
      `${absolute} holds files that are not an output of rlaif-v published there (it has no marker or report.json of this tool), so the overwrite ` +
        'option will not replace it. Remove it yourself if it is no longer needed, or choose another output.',
    );
  }
  return absolute;
}
