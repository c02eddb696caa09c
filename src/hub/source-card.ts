import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { downloadFile } from '@huggingface/hub';
import { parse as parseYaml } from 'yaml';
import type { DatasetSource } from './resolve-dataset.js';
import type { HubSettings } from './hub-settings.js';
import { retryFetch, type RetryEvent } from './retry-fetch.js';

/**
 * What the source's own dataset card says that the output's card must carry on: its licence, its name and how to cite
 * it. Read from the README.md of a Hub dataset (at the commit converted), or one beside local input.
 */
export interface SourceCard {
  /** The `license` of its YAML (several joined by commas), or null when it states none. */
  license: string | null;
  /** Its `pretty_name`, or null. */
  name: string | null;
  /** The first BibTeX entry in its text, or null. */
  citation: string | null;
  /** Where it was read: `<repo>/README.md`, or `<folder>/README.md` beside local input. */
  from: string;
}

/** The facts of a card's text. */
export function parseSourceCard(text: string, from: string): SourceCard {
  let yaml: Record<string, unknown> = {};
  const front = /^---\r?\n([\s\S]*?)\r?\n---(\r?\n|$)/.exec(text);
  if (front !== null) {
    try {
      const parsed: unknown = parseYaml(front[1] ?? '');
      if (parsed !== null && typeof parsed === 'object') yaml = parsed as Record<string, unknown>;
    } catch {
      // A card whose YAML does not parse states nothing that can be read.
    }
  }
  const licenses = (Array.isArray(yaml.license) ? yaml.license : [yaml.license]).filter((value): value is string => typeof value === 'string' && value !== '');
  const bibtex = /```[a-z]*\s*\n\s*(@[a-z]+\s*\{[\s\S]*?)\n?```/i.exec(text);
  return {
    license: licenses.length === 0 ? null : licenses.join(', '),
    name: typeof yaml.pretty_name === 'string' && yaml.pretty_name !== '' ? yaml.pretty_name : null,
    citation: bibtex?.[1]?.trim() ?? null,
    from,
  };
}

/**
 * The card of local input: README.md in an input directory, or beside an input file (the first found, in the order
 * given); null when there is none.
 */
export async function localSourceCard(inputs: readonly string[]): Promise<SourceCard | null> {
  for (const input of inputs) {
    const dir = (await stat(input).catch(() => null))?.isDirectory() === true ? input : path.dirname(input);
    const file = path.join(dir, 'README.md');
    const text = await readFile(file, 'utf8').catch(() => null);
    // Named by its folder only: the card of the output must not depend on where the input lies.
    if (text !== null) return parseSourceCard(text, `${path.basename(path.resolve(dir))}/README.md`);
  }
  return null;
}

/**
 * The card of a Hub dataset at the commit converted: from the Hugging Face cache when it is there (offline, only
 * there), else read from the Hub. Null when the dataset has none or it cannot be fetched: a card is not worth failing
 * a conversion for.
 */
export async function hubSourceCard(source: DatasetSource, settings: HubSettings, onRetry?: (event: RetryEvent) => void): Promise<SourceCard | null> {
  const first = source.files[0];
  if (first === undefined) return null;
  // <cache>/datasets--org--name/snapshots/<commit>/<file path>: the snapshot's root is above the file's folders.
  const snapshot = first.localPath.slice(0, first.localPath.length - first.path.length);
  const cached = path.join(snapshot, 'README.md');
  let text: string | null = existsSync(cached) ? await readFile(cached, 'utf8').catch(() => null) : null;
  // Read from the Hub (a few kilobytes, not kept: downloadFileToCacheDir writes progress to stdout, which --json owns).
  if (text === null && !settings.offline) {
    try {
      const blob = await downloadFile({
        repo: { type: 'dataset', name: source.repo },
        path: 'README.md',
        revision: source.commit,
        hubUrl: settings.hubUrl,
        accessToken: settings.accessToken,
        fetch: retryFetch(settings.fetch, { ...settings.retry, onRetry: onRetry ?? settings.retry.onRetry }),
      });
      text = blob === null ? null : await blob.text();
    } catch {
      text = null;
    }
  }
  return text === null ? null : parseSourceCard(text, `${source.repo}/README.md`);
}
