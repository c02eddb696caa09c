import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createMarker, markedAs, MARKER_FILE, removeMarkedDirectory } from '../../src/dirs/tool-marker.js';
import { tempDir } from '../support/fixtures.js';

describe('a directory marked as this tool\'s', () => {
  async function marked(): Promise<string> {
    const dir = path.join(await tempDir(), 'out.partial');
    await mkdir(dir);
    await createMarker(dir, 'staging', { output: 'out' });
    await mkdir(path.join(dir, 'parts', 'part-0-of-2'), { recursive: true });
    await writeFile(path.join(dir, 'parts', 'part-0-of-2', 'a.parquet'), 'a');
    for (const name of ['zz', 'aa', 'report.json']) await writeFile(path.join(dir, name), name);
    return dir;
  }

  it('is removed with its marker last, whatever order its entries come in', async () => {
    const dir = await marked();
    const order: string[] = [];
    await removeMarkedDirectory(dir, { beforeRemove: (name) => order.push(name) });
    assert.equal(order.at(-1), MARKER_FILE);
    assert.deepEqual(order.slice(0, -1).sort(), ['aa', 'parts', 'report.json', 'zz']);
    assert.ok(!existsSync(dir));
    await removeMarkedDirectory(dir); // gone already: nothing to do
  });

  it('stopped while being removed, is still marked, for the next run to finish', async () => {
    const dir = await marked();
    let seen = 0;
    await assert.rejects(
      removeMarkedDirectory(dir, {
        beforeRemove: () => {
          if (++seen === 3) throw new Error('killed');
        },
      }),
      /killed/,
    );
    assert.ok((await markedAs(dir, 'staging')) !== null, 'still marked');
    assert.equal((await readdir(dir)).length, 3);
    await removeMarkedDirectory(dir);
    assert.ok(!existsSync(dir));
  });
});
