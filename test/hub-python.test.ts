/**
 * The Hugging Face cache shared with its real owner: Python's huggingface_hub (installed with datasets from wheels on
 * disk) and this tool download from the same local Hub into the same HF_HOME, and each finds what the other fetched.
 * Skipped, with the reason printed, where Python or the wheels are absent.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pythonWithDatasets, run } from '../src/bench/python-env.js';
import { DatasetDownloads } from '../src/hub/background-downloads.js';
import { resolveDataset } from '../src/hub/resolve-dataset.js';
import { hubSettings } from '../src/hub/hub-settings.js';
import { sampleDir, tempDir } from './fixtures.js';
import { LocalHub } from './hub-server.js';

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
