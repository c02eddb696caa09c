/**
 * The Hugging Face cache shared with its real owner: Python's huggingface_hub (installed with datasets from wheels on
 * disk) and this tool download from the same local Hub into the same HF_HOME, and each finds what the other fetched.
 * And what a push through Xet put on the Hub, downloaded by huggingface_hub, is read by datasets and trained on by
 * TRL's DPOTrainer. Skipped, with the reason printed, where Python or the wheels are absent.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pythonWithDatasets, run } from '../../src/bench/python-env.js';
import { DatasetDownloads } from '../../src/hub/background-downloads.js';
import { resolveDataset } from '../../src/hub/resolve-dataset.js';
import { hubSettings } from '../../src/hub/hub-settings.js';
import { convert } from '../../src/run/convert.js';
import { push } from '../../src/hub/push-dataset.js';
import { installTorch } from '../support/python-stack.js';
import { ROOT, sampleDir, tempDir } from '../support/fixtures.js';
import { LocalHub, TEST_TOKEN } from '../support/hub-server.js';

const REPO = 'openbmb/RLAIF-V-Dataset';

const DOWNLOAD = String.raw`
import json, sys
from huggingface_hub import hf_hub_download
paths = [hf_hub_download(sys.argv[1], name, repo_type="dataset", local_files_only=sys.argv[2] == "offline") for name in sys.argv[3:]]
print(json.dumps(paths))
`;

describe("Python huggingface_hub and this tool share the cache", () => {
  let python: string | null = null;
  let skip = '';
  let hub: LocalHub;
  let source: string;
  let names: string[];

  before(async () => {
    const found = await pythonWithDatasets();
    if ('skip' in found) {
      skip = found.skip;
      console.log(`# skipping the huggingface_hub cache test: ${skip}`);
      return;
    }
    python = found.python;
    hub = await LocalHub.start();
    source = await sampleDir(40, { files: 2 });
    names = (await readdir(source)).sort();
    await hub.createDataset(REPO, names.map((name) => ({ path: name, file: path.join(source, name) })));
  });
  after(async () => {
    await hub?.close();
  });

  async function pythonDownload(home: string, mode: 'online' | 'offline'): Promise<string[]> {
    assert.ok(python !== null);
    const env = { ...process.env, HF_HOME: home, HF_ENDPOINT: hub.url, HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_XET: '1', ...(mode === 'offline' ? { HF_HUB_OFFLINE: '1' } : {}) };
    const { stdout } = await run(python, ['-c', DOWNLOAD, REPO, mode, ...names], { env });
    return JSON.parse(stdout) as string[];
  }

  it('files huggingface_hub downloaded are used as they are: nothing is fetched again', async (t) => {
    if (python === null) return t.skip(skip);
    const home = await tempDir('rlaif-v-hf-home-');
    await pythonDownload(home, 'online');
    const mark = hub.requests.length;
    const settings = await hubSettings({ env: { HF_HOME: home, HF_ENDPOINT: hub.url }, retry: { baseDelayMs: 1 } });
    const dataset = await resolveDataset({ repo: REPO, settings });
    assert.deepEqual(dataset.files.map((file) => file.cached), [true, true]);
    const downloads = new DatasetDownloads(dataset, settings);
    await downloads.ready(names.length - 1);
    assert.deepEqual(hub.bodyDownloads(mark), []);
    for (const file of dataset.files) assert.deepEqual(await readFile(file.localPath), await readFile(path.join(source, file.path)));
  });

  it('files this tool downloaded are found by huggingface_hub offline, at the same paths', async (t) => {
    if (python === null) return t.skip(skip);
    const home = await tempDir('rlaif-v-hf-home-');
    const settings = await hubSettings({ env: { HF_HOME: home, HF_ENDPOINT: hub.url }, retry: { baseDelayMs: 1 } });
    const dataset = await resolveDataset({ repo: REPO, settings });
    const downloads = new DatasetDownloads(dataset, settings);
    await downloads.ready(names.length - 1);
    const paths = await pythonDownload(home, 'offline');
    assert.deepEqual(paths, dataset.files.map((file) => file.localPath));
    for (const [index, found] of paths.entries()) assert.deepEqual(await readFile(found), await readFile(path.join(source, names[index] ?? '')));
  });
});

const READ_PUSHED = String.raw`
import json, sys
from huggingface_hub import snapshot_download
from datasets import load_dataset
path = snapshot_download(sys.argv[1], repo_type="dataset")
dataset = load_dataset(path)
print(json.dumps({"path": path, "rows": {name: split.num_rows for name, split in dataset.items()}, "images": len(dataset["train"][0]["images"])}))
`;

describe('what a push through Xet put on the Hub', () => {
  it('is downloaded by huggingface_hub, read by datasets and trained on by DPOTrainer', { timeout: 600_000 }, async (t) => {
    const found = await pythonWithDatasets();
    if ('skip' in found) return t.skip(found.skip);
    const hub = await LocalHub.start();
    t.after(() => hub.close());
    hub.xet = true;
    const output = path.join(await tempDir(), 'out');
    const report = await convert({ input: [await sampleDir(40)], output, numProc: 1, maxShardSize: '60KB', testSize: 0.1 });
    const settings = await hubSettings({ env: { HF_HOME: await tempDir(), HF_ENDPOINT: hub.url, HF_TOKEN: TEST_TOKEN }, retry: { baseDelayMs: 1 } });
    const pushed = await push({ dir: output, repoId: 'me/xet-python', settings });
    assert.equal(pushed.transfer, 'xet');
    // This Hub serves files over plain HTTP only: huggingface_hub is told not to fetch them through Xet.
    const env = { ...process.env, HF_HOME: await tempDir('rlaif-v-hf-home-'), HF_ENDPOINT: hub.url, HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_XET: '1' };
    const { stdout } = await run(found.python, ['-c', READ_PUSHED, 'me/xet-python'], { env });
    const read = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { path: string; rows: Record<string, number>; images: number };
    assert.deepEqual(read.rows, Object.fromEntries(Object.entries(report.output.splits).map(([split, value]) => [split, value.rows])));
    assert.equal(read.images, 1);
    const missing = await installTorch(found.python);
    if (missing !== null) return t.skip(missing);
    const smoke = await run(found.python, [path.join(ROOT, 'test', 'support', 'dpo_smoke.py'), read.path, '--steps', '2', '--rows', '8'], { maxBuffer: 16 * 1024 * 1024 });
    const result = JSON.parse(smoke.stdout.trim().split('\n').at(-1) ?? '{}') as { steps: number; finite: boolean; loss: number };
    assert.equal(result.steps, 2);
    assert.ok(result.finite, `loss ${result.loss}`);
  });
});
