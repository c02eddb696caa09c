"""The Python reference: TRL's examples/datasets/rlaif-v.py on local parquet, writing the shards as push_to_hub would.

Run by `npm run bench:reference` (bench/run-reference.ts) on the same input as `rlaif-v bench`. Prints one JSON line:
rows, seconds per stage, rows/s. Steps, as the script and datasets' push_to_hub do them:
  1. load_dataset("parquet", data_files=<input files>, split="train")
  2. map(to_conversational, num_proc, remove_columns=<all>, writer_batch_size=128)
  3. cast images to Sequence(Image(decode=True))
  4. train_test_split(test_size=0.01, writer_batch_size=128)
  5. per split: floor(nbytes / 500MB) + 1 contiguous shards, each mapped through embed_table_storage in batches and
     written with to_parquet(batch_size=<writer batch size for image data>), which is what push_to_hub uploads.
With --flatten-indices, each split's indices mapping is flattened before step 5 (a workaround for the push step's
memory use on image data; the output is the same).
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time


def to_conversational(example):
    return {
        "prompt": [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": example["question"]}]}],
        "chosen": [{"role": "assistant", "content": [{"type": "text", "text": example["chosen"]}]}],
        "rejected": [{"role": "assistant", "content": [{"type": "text", "text": example["rejected"]}]}],
        "images": [example["image"]],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--num-proc", type=int, default=None)
    parser.add_argument("--flatten-indices", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("HF_DATASETS_CACHE", os.path.join(args.output, ".cache"))
    import datasets
    from datasets import Image, Sequence, load_dataset
    from datasets.arrow_writer import get_writer_batch_size_from_data_size, get_writer_batch_size_from_features
    from datasets.table import embed_table_storage
    from datasets.utils.py_utils import convert_file_size_to_int

    datasets.disable_progress_bars()
    files = sorted(glob.glob(os.path.join(args.input, "**", "*.parquet"), recursive=True))
    seconds = {}
    started = time.perf_counter()

    t = time.perf_counter()
    dataset = load_dataset("parquet", data_files=files, split="train", cache_dir=os.path.join(args.output, ".cache"))
    seconds["load"] = time.perf_counter() - t
    rows = len(dataset)

    t = time.perf_counter()
    dataset = dataset.map(
        to_conversational,
        num_proc=args.num_proc,
        remove_columns=dataset.column_names,
        writer_batch_size=128,
    )
    seconds["map"] = time.perf_counter() - t

    t = time.perf_counter()
    dataset = dataset.cast_column("images", Sequence(Image(decode=True)))
    seconds["cast"] = time.perf_counter() - t

    t = time.perf_counter()
    splits = dataset.train_test_split(test_size=0.01, writer_batch_size=128)
    seconds["split"] = time.perf_counter() - t

    t = time.perf_counter()
    written = {}
    out_bytes = 0
    os.makedirs(os.path.join(args.output, "data"), exist_ok=True)
    for name, split in splits.items():
        if args.flatten_indices:
            split = split.flatten_indices()
        nbytes = split._estimate_nbytes()
        writer_batch_size = get_writer_batch_size_from_features(split.features) or get_writer_batch_size_from_data_size(
            len(split), nbytes
        )
        num_shards = int(nbytes / convert_file_size_to_int(datasets.config.MAX_SHARD_SIZE)) + 1
        for index in range(num_shards):
            shard = split.shard(num_shards=num_shards, index=index, contiguous=True)
            shard = shard.with_format("arrow")
            shard = shard.map(embed_table_storage, batched=True, batch_size=writer_batch_size, keep_in_memory=True)
            path = os.path.join(args.output, "data", f"{name}-{index:05d}-of-{num_shards:05d}.parquet")
            shard.to_parquet(path, batch_size=writer_batch_size)
            out_bytes += os.path.getsize(path)
        written[name] = {"rows": len(split), "shards": num_shards, "nbytes": nbytes}
    seconds["push"] = time.perf_counter() - t

    total = time.perf_counter() - started
    print(json.dumps({
        "tool": "reference",
        "datasets": datasets.__version__,
        "numProc": args.num_proc or 1,
        "rows": rows,
        "splits": written,
        "outputBytes": out_bytes,
        "seconds": {k: round(v, 2) for k, v in seconds.items()} | {"total": round(total, 2)},
        "rowsPerSecond": round(rows / total, 2),
    }))


if __name__ == "__main__":
    sys.exit(main())
