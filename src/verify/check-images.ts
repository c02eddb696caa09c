import { checkImage } from '../image/prepare-image.js';
import type { VerifyImagesResult, VerifyImagesTask } from './protocol.js';

/** Checks that each image of a row group of an output decodes (see checkImage); says which rows do not, and why. */
export async function checkImages(task: VerifyImagesTask): Promise<VerifyImagesResult> {
  const bad: VerifyImagesResult['bad'] = [];
  for (const [index, bytes] of task.images.entries()) {
    if (bytes === null) continue;
    const check = await checkImage(bytes);
    if (!check.ok) bad.push({ row: task.firstRow + index, message: check.message });
  }
  return { bad };
}
