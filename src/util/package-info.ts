import { readFileSync } from 'node:fs';
import { PACKAGE_JSON } from './paths.js';

interface PackageJson {
  name: string;
  version: string;
  /** What it depends on, by exact version where the output depends on it (the JPEG encoder). */
  dependencies?: Record<string, string>;
}

/** This package's name and version, read once from its package.json. */
export const packageInfo: PackageJson = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as PackageJson;
