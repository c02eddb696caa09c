/** The dataset card's `load_dataset` snippet: what names the dataset in it, locally or on the Hub. */

/** The line of the card's snippet that names the dataset; a push rewrites it to the repo pushed to. */
export function loadLine(location: string): string {
  return `dataset = load_dataset(${JSON.stringify(location)})`;
}

/** The card with its `load_dataset` snippet naming `repoId` instead of the local directory: what a push uploads. */
export function cardForRepo(card: string, repoId: string): string {
  return card.replace(/^dataset = load_dataset\(.*\)$/m, loadLine(repoId));
}
