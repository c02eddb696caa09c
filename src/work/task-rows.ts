import { readImagePages } from '../read/read-image-pages.js';
import type { ConvertTask } from './protocol.js';
import type { SourceRow } from '../source/source-row.js';

/**
 * The rows of a task, in a worker: as sent, or with their image bytes read from the file first when the task names
 * their pages (a row whose image has neither bytes nor a path has a null image, as when read page by page).
 */
export function readTaskRows(task: Pick<ConvertTask, 'data' | 'imagePages'>): SourceRow[] {
  if (task.imagePages === undefined) return task.data;
  const bytes = readImagePages(task.imagePages);
  return task.data.map((row, index) => {
    const path = row.image?.path ?? null;
    const image = bytes[index] ?? null;
    return { ...row, image: image === null && path === null ? null : { bytes: image, path } };
  });
}
