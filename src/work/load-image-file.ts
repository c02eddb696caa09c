import { closeSync, constants, fstatSync, openSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { SourceRow } from '../source/source-row.js';
import { readFully } from '../util/read-fully.js';

/** Whether `file` is one of `roots` or lies inside one. */
function isWithin(file: string, roots: readonly string[]): boolean {
  return roots.some((root) => {
    const relative = path.relative(root, file);
    return relative !== '' && !relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative);
  });
}

/** The real path of the file open as `fd` (Linux tells it exactly); elsewhere, of `file` with its links resolved. */
function realPathOf(fd: number, file: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return realpathSync(file);
  }
}

const rootsOf = new Map<string, string[]>();

/**
 * Where image files of the dataset in `root` may really be: under `root` itself, links resolved; and, for a Hugging
 * Face cache snapshot (`<repo>/snapshots/<commit>/…`, whose files are links into `<repo>/blobs/`), in its blobs.
 */
function allowedRoots(root: string): string[] {
  let roots = rootsOf.get(root);
  if (roots === undefined) {
    const real = realpathSync(root);
    roots = [real];
    for (let at = real; path.dirname(at) !== at; at = path.dirname(at)) {
      if (path.basename(path.dirname(at)) === 'snapshots') {
        roots.push(path.join(path.dirname(path.dirname(at)), 'blobs'));
        break;
      }
    }
    rootsOf.set(root, roots);
  }
  return roots;
}

/** Image files larger than this are refused unread: no image of a dataset is, and reading one would take the memory. */
const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;

/**
 * The row with its image read from the file its path names, relative to `dir`, into a buffer of its own (it is
 * transferred with the result); or why it could not be. The file must be a regular file within `root`, the dataset's
 * directory, where it really is (links followed): a path that leads elsewhere (`../..`, `/etc/…`, a link to a file or
 * a folder outside) is refused, so that a dataset cannot pull other files into an output or its rejects.
 */
export function loadImageFile(dir: string, root: string, row: SourceRow): { row: SourceRow; error: string | null } | null {
  const name = row.image?.path ?? null;
  if (row.image === null || row.image.bytes !== null || name === null) return null;
  const file = path.resolve(dir, name);
  const inside = path.relative(root, file);
  if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
    return { row, error: `the image path ${JSON.stringify(name)} leads outside the dataset's directory: it is not read` };
  }
  // Messages name files relative to the dataset's directory: a reject must not depend on where the dataset is mounted
  // (parts on hosts that mount it elsewhere put their rejects together into one machine's bytes).
  const where = inside.split(path.sep).join('/');
  let fd: number | null = null;
  try {
    // Not blocking: a FIFO opened for reading would wait for a writer, and a worker waiting there cannot be stopped.
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    // Where the file opened really is, links followed: a link inside the dataset to a file outside it is refused.
    if (!isWithin(realPathOf(fd, file), allowedRoots(root))) {
      return { row, error: `the image path ${JSON.stringify(name)} leads outside the dataset's directory through a link: it is not read` };
    }
    const info = fstatSync(fd);
    if (!info.isFile()) return { row, error: `the image path ${JSON.stringify(name)} is not a file (${where})` };
    if (info.size > MAX_IMAGE_FILE_BYTES) return { row, error: `the image file ${JSON.stringify(name)} is ${info.size} bytes, over the ${MAX_IMAGE_FILE_BYTES} an image may be` };
    return { row: { ...row, image: { bytes: readFully(fd, info.size, 0), path: name } }, error: null };
  } catch (error) {
    return { row, error: `the image file ${JSON.stringify(name)} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'an error'}: ${where})` };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
