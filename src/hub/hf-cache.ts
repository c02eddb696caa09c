import { stat } from 'node:fs/promises';

/** The folder of a dataset repo in the Hugging Face cache, named as huggingface_hub names it. */
export function repoFolder(repo: string): string {
  return `datasets--${repo.split('/').join('--')}`;
}

/** The size of a file in the cache, or null when it is not there. */
export async function sizeOf(file: string): Promise<number | null> {
  return stat(file).then(
    (info) => info.size,
    () => null,
  );
}
