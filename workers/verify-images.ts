/**
 * The worker of `verify`: checks that each image of a row group of an output decodes (see checkImage). Images arrive
 * with their buffers transferred.
 */
import { checkImage } from '../src/image/prepare-image.js';
import type { VerifyImagesResult, VerifyImagesTask } from '../src/types.js';

export default async function verifyImages(task: VerifyImagesTask): Promise<VerifyImagesResult> {
  const bad: VerifyImagesResult['bad'] = [];
  for (const [index, bytes] of task.images.entries()) {
    if (bytes === null) continue;
    const check = await checkImage(bytes);
    if (!check.ok) bad.push({ row: task.firstRow + index, message: check.message });
  }
  return { bad };
}
