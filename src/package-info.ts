import { readFileSync } from 'node:fs';

interface PackageJson {
  name: string;
  version: string;
}

/** This package's name and version, read once from its package.json. */
export const packageInfo: PackageJson = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as PackageJson;
