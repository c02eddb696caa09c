/**
 * The output as its real consumer reads it: Python `datasets` (with pyarrow and Pillow) installed from wheels on disk
 * into a private virtualenv, without network. Skipped, with the reason printed, where Python or the wheels are absent.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { verify } from '../../src/verify/verify.js';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { convert } from '../../src/run/convert.js';
import type { ConvertReport } from '../../src/run/convert-report.js';
import { pythonWithDatasets, run } from '../../src/bench/python-env.js';
import { installTorch, installTrl } from '../support/python-stack.js';
import { imageCases } from '../../scripts/bad-corpus.js';
import { writeSourceFile } from '../../src/source/source-rows-to-arrow.js';
import { ROOT, sampleDir, sourceRow, tempDir } from '../support/fixtures.js';

const CHECK = String.raw`
import json, sys
import datasets
from datasets import load_dataset
out = sys.argv[1]
ds = load_dataset(out)
result = {"version": datasets.__version__, "splits": {k: v.num_rows for k, v in ds.items()}}
features = ds["train"].features
result["images_feature"] = type(features["images"]).__name__
result["images_inner"] = type(getattr(features["images"], "feature", None)).__name__
result["columns"] = list(ds["train"].column_names)
row = ds["test"][0]
result["prompt"] = [{"role": m["role"], "types": [c["type"] for c in m["content"]], "image_text": m["content"][0]["text"]} for m in row["prompt"]]
result["chosen_role"] = row["chosen"][0]["role"]
result["rejected_role"] = row["rejected"][0]["role"]
decoded = 0
modes = set()
for split in ds.values():
    for example in split:
        for image in example["images"]:
            image.load()
            modes.add(image.mode)
            decoded += 1
result["decoded"] = decoded
result["image_type"] = type(ds["train"][0]["images"][0]).__module__.split(".")[0]
result["modes"] = sorted(modes)
print(json.dumps(result))
`;

const TRL_CHECK = String.raw`
import json, sys
from datasets import load_dataset
from trl.data_utils import is_conversational, maybe_apply_chat_template
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast
tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")), unk_token="[UNK]")
tokenizer.chat_template = (
    "{% for m in messages %}<|{{ m['role'] }}|>{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
ds = load_dataset(sys.argv[1])
example = ds["train"][0]
rendered = maybe_apply_chat_template({k: example[k] for k in ("prompt", "chosen", "rejected")}, tokenizer)
question = example["prompt"][0]["content"][1]["text"]
print(json.dumps({
    "conversational": all(is_conversational(ds["train"][i]) for i in range(10)),
    "prompt": rendered["prompt"],
    "expected_prompt": "<|user|><image>" + question + "<|assistant|>",
    "chosen": rendered["chosen"],
    "expected_chosen": example["chosen"][0]["content"][0]["text"],
}))
`;

describe('Python datasets reads the output', () => {
  let python: string | null = null;
  let skip = '';
  let output: string;
  let report: ConvertReport;

  before(async () => {
    const found = await pythonWithDatasets();
    if ('skip' in found) {
      skip = found.skip;
      console.log(`# skipping Python compatibility: ${skip}`);
      return;
    }
    python = found.python;
    const input = await sampleDir(2000, { files: 2 });
    output = path.join(await tempDir(), 'rlaif-v');
    report = await convert({ input: [input], output });
  });

  it('load_dataset gives train and test with the exact split counts, Image features and every image decodable', async (t) => {
    if (python === null) {
      t.skip(skip);
      return;
    }
    const { stdout } = await run(python, ['-c', CHECK, output], { maxBuffer: 16 * 1024 * 1024 });
    const result = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(result.splits, { train: 1980, test: 20 });
    assert.deepEqual(result.columns, ['chosen', 'rejected', 'prompt', 'images']);
    assert.match(String(result.images_feature), /^(List|Sequence)$/);
    assert.equal(result.images_inner, 'Image');
    assert.equal(result.image_type, 'PIL');
    assert.deepEqual(result.prompt, [{ role: 'user', types: ['image', 'text'], image_text: null }]);
    assert.equal(result.chosen_role, 'assistant');
    assert.equal(result.rejected_role, 'assistant');
    assert.equal(result.decoded, report.output.rows);
    assert.equal(report.input.rows, 2000);
  });

  it('a copy that datasets writes back (to_parquet) verifies: its way of writing the schema and features is understood', async (t) => {
    if (python === null) {
      t.skip(skip);
      return;
    }
    const copy = await tempDir();
    await mkdir(path.join(copy, 'data'));
    await copyFile(path.join(output, 'README.md'), path.join(copy, 'README.md'));
    const write = 'import sys\nfrom datasets import load_dataset\nds = load_dataset(sys.argv[1])\nfor name, split in ds.items():\n    split.to_parquet(f"{sys.argv[2]}/data/{name}-00000-of-00001.parquet")\n';
    await run(python, ['-c', write, output, copy], { maxBuffer: 16 * 1024 * 1024 });
    const checked = await verify({ dir: copy, numProc: 2 });
    assert.deepEqual(checked.problems, []);
    assert.deepEqual(checked.notes, ['no report.json: rows were not checked against what was written']);
    assert.equal(checked.images.checked, 2000);
  });

  it('decodes in Pillow every image of a run over the corpus of odd images (kept and normalized alike)', async (t) => {
    if (python === null) {
      t.skip(skip);
      return;
    }
    const dir = await tempDir();
    const rows = (await imageCases())
      .filter((item) => item.expected.outcome !== 'rejected')
      .map((item, index) => sourceRow(index, { bytes: item.bytes, path: item.name }));
    await writeSourceFile(path.join(dir, 'corpus.parquet'), rows);
    const corpus = await convert({ input: [path.join(dir, 'corpus.parquet')], output: path.join(dir, 'out'), testSize: 1 });
    assert.equal(corpus.rejected.rows, 0);
    const { stdout } = await run(python, ['-c', CHECK, path.join(dir, 'out')], { maxBuffer: 16 * 1024 * 1024 });
    const result = JSON.parse(stdout) as { decoded: number; modes: string[] };
    assert.equal(result.decoded, rows.length);
    assert.ok(result.modes.every((mode) => ['RGB', 'RGBA', 'L', 'LA', 'P'].includes(mode)), result.modes.join(' '));
  });

  it("TRL's data utilities see conversational rows and render them through a chat template", async (t) => {
    if (python === null) {
      t.skip(skip);
      return;
    }
    const missing = await installTrl(python);
    if (missing !== null) {
      console.log(`# skipping the TRL check: ${missing}`);
      t.skip(missing);
      return;
    }
    const { stdout } = await run(python, ['-c', TRL_CHECK, output], { maxBuffer: 16 * 1024 * 1024 });
    const result = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(result.conversational, true);
    assert.equal(result.prompt, result.expected_prompt);
    // TRL renders prompt + answer and keeps what follows the prompt: the answer alone.
    assert.equal(result.chosen, result.expected_chosen);
  });

  it("trains in TRL's DPOTrainer: a tiny random LLaVA takes a few steps on the output, with a finite loss", { timeout: 600_000 }, async (t) => {
    if (python === null) {
      t.skip(skip);
      return;
    }
    const missing = await installTorch(python);
    if (missing !== null) {
      console.log(`# skipping the DPOTrainer run: ${missing}`);
      t.skip(missing);
      return;
    }
    // test/support/dpo_smoke.py builds everything from the output itself (tokenizer, chat template, processor, model).
    const script = path.join(ROOT, 'test', 'support', 'dpo_smoke.py');
    const { stdout } = await run(python, [script, output, '--steps', '2', '--rows', '8'], { maxBuffer: 16 * 1024 * 1024 });
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { steps: number; loss: number; finite: boolean; rows: number; pixel_values: number[]; image_tokens_per_row: number[] };
    assert.equal(result.steps, 2);
    assert.equal(result.rows, 8);
    assert.ok(result.finite, `loss ${result.loss}`);
    // A batch as the trainer feeds it: the images went through the image processor, and every sequence holds the
    // 16 placeholders the vision tower's features go into.
    assert.deepEqual(result.pixel_values.slice(1), [3, 32, 32]);
    assert.ok(result.image_tokens_per_row.length > 0 && result.image_tokens_per_row.every((count) => count === 16), result.image_tokens_per_row.join(' '));
  });
});
