import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { outputYamlFeatures } from '../output/output-schema.js';
import type { VerifyProblem } from './problem.js';
import { count } from '../util/format.js';
import type { Shard } from './shards.js';

/** The dataset card checked against the files: its features, its splits' sizes, its data_files patterns. */

/** The parsed YAML front matter of a dataset card; null when it has none; an Error when it does not parse. */
function frontMatter(card: string): Record<string, unknown> | Error | null {
  const match = /^---\r?\n([\s\S]*?)\r?\n---(\r?\n|$)/.exec(card);
  if (match === null) return null;
  try {
    const parsed: unknown = parseYaml(match[1] ?? '');
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : null;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * Checks README.md's YAML against the files: the features, and each split's num_examples (not for the splits in
 * `unknown`, whose rows cannot be counted: a shard of theirs is damaged, which is said already).
 */
export async function checkCard(dir: string, shards: Shard[], rows: Map<string, number>, unknown: Set<string>, problems: VerifyProblem[]): Promise<void> {
  const card = await readFile(path.join(dir, 'README.md'), 'utf8').catch(() => null);
  if (card === null) {
    problems.push({ code: 'missing_card', where: 'README.md', message: 'README.md is missing: load_dataset would not know the features or the splits' });
    return;
  }
  const yaml = frontMatter(card);
  if (yaml instanceof Error) {
    problems.push({ code: 'missing_card', where: 'README.md', message: `README.md's YAML front matter does not parse (${yaml.message.split('\n')[0] ?? ''}): load_dataset would fail on it` });
    return;
  }
  const info = yaml?.dataset_info as { features?: unknown; splits?: { name?: unknown; num_examples?: unknown }[] } | undefined;
  if (info === undefined) {
    problems.push({ code: 'missing_card', where: 'README.md', message: 'README.md has no dataset_info in its YAML front matter' });
    return;
  }
  const expected = (parseYaml(`dataset_info:\n${outputYamlFeatures}`) as { dataset_info: { features: unknown } }).dataset_info.features;
  if (JSON.stringify(info.features) !== JSON.stringify(expected)) {
    problems.push({ code: 'card_features', where: 'README.md', message: 'README.md lists other features than the files hold: load_dataset would fail to cast the files to them' });
  }
  const listed = new Map((info.splits ?? []).map((split) => [String(split.name), Number(split.num_examples)]));
  for (const [split, found] of rows) {
    if (unknown.has(split)) continue;
    const said = listed.get(split);
    if (said === undefined) problems.push({ code: 'card_splits', where: 'README.md', message: `README.md does not list the ${split} split, which data/ holds` });
    else if (said !== found) {
      problems.push({
        code: 'card_splits',
        where: 'README.md',
        message: `README.md says ${split} has ${count(said)} rows (num_examples), the files hold ${count(found)}: load_dataset fails with NonMatchingSplitsSizesError`,
      });
    }
  }
  for (const split of listed.keys()) {
    if (!rows.has(split)) problems.push({ code: 'card_splits', where: 'README.md', message: `README.md lists a ${split} split that data/ does not hold` });
  }
  await checkDataFiles(dir, yaml?.configs, shards, problems);
}

/** A `data_files` pattern as a regular expression over paths relative to the dataset: `*` within a folder, `**` across. */
function globPattern(glob: string): RegExp {
  const parts = glob.split(/(\*\*\/?|\*|\?)/).map((part) => {
    if (part === '**') return '.*';
    if (part === '**/') return '(?:.*/)?';
    if (part === '*') return '[^/]*';
    if (part === '?') return '[^/]';
    return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('')}$`);
}

/**
 * Checks the card's `configs` (what `load_dataset` reads the splits from): each split's `data_files` patterns must pick
 * up its shards, and only its own; a pattern that matches no file makes load_dataset fail. A card without `configs`
 * is left to datasets' own layout rules.
 */
async function checkDataFiles(dir: string, configs: unknown, shards: Shard[], problems: VerifyProblem[]): Promise<void> {
  if (!Array.isArray(configs)) return;
  const config = (configs as { config_name?: unknown; data_files?: unknown }[]).find((entry) => entry?.config_name === 'default') ?? configs[0];
  const entries = (config as { data_files?: unknown } | undefined)?.data_files;
  if (!Array.isArray(entries)) return;
  const files = (await readdir(dir, { recursive: true })).map((name) => name.split(path.sep).join('/'));
  const picked = new Map<string, string>();
  for (const entry of entries as { split?: unknown; path?: unknown }[]) {
    const split = String(entry?.split ?? 'train');
    const patterns = (Array.isArray(entry?.path) ? entry.path : [entry?.path]).filter((value): value is string => typeof value === 'string');
    for (const glob of patterns) {
      const matching = files.filter((file) => globPattern(glob).test(file));
      if (matching.length === 0) {
        problems.push({ code: 'card_data_files', where: 'README.md', message: `README.md's data_files for the ${split} split (${glob}) match no file: load_dataset fails with FileNotFoundError` });
      }
      for (const file of matching) picked.set(file, split);
    }
  }
  for (const shard of shards) {
    const split = picked.get(shard.file);
    if (split === shard.split) continue;
    problems.push({
      code: 'card_data_files',
      where: shard.file,
      message: split === undefined ? `${shard.file} is not picked up by README.md's data_files: load_dataset would leave its rows out` : `README.md's data_files put ${shard.file} in the ${split} split`,
    });
  }
}
