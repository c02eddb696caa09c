import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convert } from '../../src/run/convert.js';
import { cardForRepo } from '../../src/output/load-line.js';
import { parseSourceCard } from '../../src/hub/source-card.js';
import { hubSettings } from '../../src/hub/hub-settings.js';
import { runCli, sampleDir, tempDir } from '../support/fixtures.js';
import { LocalHub } from '../support/hub-server.js';

const SOURCE_CARD = `---
license: cc-by-4.0
pretty_name: Pictures and Preferences
---

# Pictures and Preferences

Cite it as:

\`\`\`bibtex
@article{pictures2026,
  title={Pictures and Preferences},
  year={2026}
}
\`\`\`
`;

describe('the dataset card', () => {
  let input: string;

  before(async () => {
    input = await sampleDir(120, { files: 2 });
  });

  it("says what was converted: the local files, and the licence, name and citation of the source's own card", async () => {
    await writeFile(path.join(input, 'README.md'), SOURCE_CARD);
    const output = path.join(await tempDir(), 'out');
    await convert({ input: [input], output, testSize: 0.1, numProc: 1 });
    const card = await readFile(path.join(output, 'README.md'), 'utf8');
    assert.match(card, /^---\nlicense: cc-by-4\.0\ntask_categories:\n- image-text-to-text\nsize_categories:\n- n<1K\ntags:\n- trl\n- dpo\n- vision\n/);
    assert.match(card, /\n# Pictures and Preferences in TRL's conversational format\n/);
    const files = (await readdir(input)).filter((name) => name.endsWith('.parquet')).sort();
    for (const name of files) assert.match(card, new RegExp(`\\| \`${name.replace('.', '\\.')}\` \\| 60 \\| \`[0-9a-f]{16}\` \\|`));
    assert.match(card, new RegExp(`released under \\[CC BY 4\\.0\\]\\(https://creativecommons\\.org/licenses/by/4\\.0/\\) \\(as its card, \`${path.basename(input)}/README\\.md\`, states\\)`));
    assert.match(card, /## Citation\n\nCite the source dataset:\n\n```bibtex\n@article\{pictures2026,\n {2}title=\{Pictures and Preferences\},\n {2}year=\{2026\}\n\}\n```\n/);
    assert.match(card, new RegExp(`dataset = load_dataset\\(${JSON.stringify(output).replace(/[/.]/g, '\\$&')}\\)`));
    assert.match(card, /The test split is 10% of the rows, rounded up, chosen by a permutation seeded with 42/);
    assert.doesNotMatch(card, /Images: Images/);
    assert.equal(cardForRepo(card, 'me/pictures').match(/load_dataset\("me\/pictures"\)/)?.length, 1, 'a push names the repo');
    await rm(path.join(input, 'README.md'));
  });

  it('says the licence is unknown where the source states none, and has words for every option', async () => {
    const output = path.join(await tempDir(), 'out');
    const result = await runCli(['convert', '-i', input, '-o', output, '--test-size', '0', '--images', 'jpeg', '--quality', '80', '--max-side', '64', '--quiet']);
    assert.equal(result.code, 0, result.stderr);
    const card = await readFile(path.join(output, 'README.md'), 'utf8');
    assert.match(card, /^---\nlicense: unknown\n/);
    assert.match(card, /The source's licence is unknown: its card states none \(no card was found beside it\)\. Check the terms/);
    assert.match(card, /- Split: 120 train rows; no test split was made \(test size 0\)\./);
    assert.doesNotMatch(card, /0 of the rows/);
    assert.match(card, /- Images: all re-encoded as JPEG at quality 80\. JPEG has no transparency: transparent pixels were laid on white\. Images larger than 64 pixels on their longest side were shrunk to fit it\./);
    assert.doesNotMatch(card, /## Citation/);
    const keep = path.join(await tempDir(), 'keep');
    assert.equal((await runCli(['convert', '-i', input, '-o', keep, '--max-side', '64', '--quiet'])).code, 0);
    assert.match(await readFile(path.join(keep, 'README.md'), 'utf8'), /so a PNG without transparency that had to be changed \(shrunk, say\) is now a JPEG\./);
  });

  it('reads the licence, name and citation from a card given as a Hugging Face card reads', () => {
    const card = parseSourceCard(`---\r\nlicense:\r\n- mit\r\n- apache-2.0\r\n---\r\nNo citation here.`, 'x/README.md');
    assert.deepEqual(card, { license: 'mit, apache-2.0', name: null, citation: null, from: 'x/README.md' });
    assert.deepEqual(parseSourceCard('---\nlicense: [unclosed\n---\n', 'y'), { license: null, name: null, citation: null, from: 'y' });
  });
});

describe('the dataset card of a Hub source', () => {
  let hub: LocalHub;

  before(async () => {
    hub = await LocalHub.start();
  });
  after(() => hub.close());

  it('names the dataset and the commit converted, and carries on its card', async () => {
    const source = await sampleDir(40, { files: 1 });
    await writeFile(path.join(source, 'README.md'), SOURCE_CARD.replace('cc-by-4.0', 'cc-by-nc-4.0'));
    const names = (await readdir(source)).sort();
    const commit = await hub.createDataset('someone/pictures', names.map((name) => ({ path: name, file: path.join(source, name) })));
    const settings = await hubSettings({ env: { HF_ENDPOINT: hub.url, HF_HOME: await tempDir('rlaif-v-hf-home-') } });
    const output = path.join(await tempDir(), 'out');
    await convert({ dataset: 'someone/pictures', output, hub: settings, numProc: 1 });
    const card = await readFile(path.join(output, 'README.md'), 'utf8');
    assert.match(card, /^---\nlicense: cc-by-nc-4\.0\n/);
    assert.match(
      card,
      new RegExp(`Made from the Hugging Face dataset \\[someone/pictures\\]\\(https://huggingface\\.co/datasets/someone/pictures\\) at commit \`${commit}\` \\(revision \`main\`\\): 1 parquet file\\(s\\), 40 rows\\.`),
    );
    assert.match(card, /released under \[CC BY-NC 4\.0\]\(https:\/\/creativecommons\.org\/licenses\/by-nc\/4\.0\/\) \(as its card, `someone\/pictures\/README\.md`, states\); this derived dataset carries the same licence and is for non-commercial use\./);
    assert.match(card, /@article\{pictures2026,/);
  });
});
