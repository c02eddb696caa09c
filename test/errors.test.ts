/**
 * Error codes are one typed union (src/errors.ts, `ErrorCode`): every code the sources give is in it, and every one of
 * it is in the README's table. Read from the sources, as text.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './fixtures.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? sources(full) : name.endsWith('.ts') ? [full] : [];
  });
}

const errors = readFileSync(path.join(ROOT, 'src', 'errors.ts'), 'utf8');
const union = errors.slice(errors.indexOf('export type ErrorCode ='), errors.indexOf(';', errors.indexOf('export type ErrorCode =')));
const CODES = new Set([...union.matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((match) => match[1] ?? ''));

describe('error codes', () => {
  it('are one union of at least the codes the README has long named', () => {
    for (const code of ['ERR_INPUT_MISSING', 'ERR_OUTPUT_EXISTS', 'ERR_HUB_NO_TOKEN', 'ERR_ROW_ACCOUNTING']) assert.ok(CODES.has(code), code);
  });

  it('given anywhere in src/ or workers/ are in the union', () => {
    const given = new Set<string>();
    for (const file of [...sources(path.join(ROOT, 'src')), ...sources(path.join(ROOT, 'workers'))]) {
      for (const match of readFileSync(file, 'utf8').matchAll(/['"`](ERR_[A-Z0-9_]+)['"`]/g)) given.add(match[1] ?? '');
    }
    assert.deepEqual([...given].filter((code) => !CODES.has(code)).sort(), []);
  });

  it('are each listed in the README', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.deepEqual([...CODES].filter((code) => !readme.includes(`| \`${code}\` |`)), []);
  });
});
