"""The plain peer: what a Python user writes instead of the `datasets` script. pyarrow reads, Pillow checks (or
re-encodes) every image, pyarrow writes 100-row row groups; one process per core with multiprocessing, one task per
input row group. No split, no card: only the work per row, so it is a lower bound for any Python conversion.

Run by `rlaif-v bench --reference`. Prints one JSON line: rows, images rejected, seconds, CPU seconds of all processes.

  python bench/plain.py --input DIR --output DIR [--num-proc N] [--images keep|jpeg] [--quality 75] [--max-side 640]
"""

import argparse
import glob
import io
import json
import os
import resource
import sys
import time
from multiprocessing import Pool

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

TEXT = pa.struct([("type", pa.string()), ("text", pa.string())])
MESSAGE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.list_(TEXT))]))
SCHEMA = pa.schema([
    ("chosen", MESSAGE),
    ("rejected", MESSAGE),
    ("prompt", MESSAGE),
    ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
])


def check(data, mode, quality, max_side=None):
    image = Image.open(io.BytesIO(data))
    if mode == "keep":
        image.load()
        return data
    if max_side:
        # What a careful Pillow user writes to shrink: DCT scaling on load (JPEG), then a thumbnail.
        image.draft("RGB", (max_side, max_side))
    image = image.convert("RGB")
    if max_side:
        image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def convert(task):
    path, group, output, mode, quality, max_side = task
    table = pq.ParquetFile(path).read_row_group(group, columns=["image", "question", "chosen", "rejected"])
    rows = {"chosen": [], "rejected": [], "prompt": [], "images": []}
    rejected = 0
    for image, question, chosen, rejected_text in zip(
        table.column("image").to_pylist(), table.column("question").to_pylist(),
        table.column("chosen").to_pylist(), table.column("rejected").to_pylist(),
    ):
        try:
            data = check(image["bytes"], mode, quality, max_side)
        except Exception:
            rejected += 1
            continue
        rows["prompt"].append([{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": question}]}])
        rows["chosen"].append([{"role": "assistant", "content": [{"type": "text", "text": chosen}]}])
        rows["rejected"].append([{"role": "assistant", "content": [{"type": "text", "text": rejected_text}]}])
        rows["images"].append([{"bytes": data, "path": None}])
    name = f"{os.path.splitext(os.path.basename(path))[0]}-{group:05d}.parquet"
    pq.write_table(pa.table(rows, schema=SCHEMA), os.path.join(output, name), row_group_size=100)
    return table.num_rows, rejected


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--num-proc", type=int, default=os.cpu_count())
    parser.add_argument("--images", choices=["keep", "jpeg"], default="keep")
    parser.add_argument("--quality", type=int, default=75)
    parser.add_argument("--max-side", type=int, default=None, help="with --images jpeg: shrink to fit (draft + thumbnail)")
    args = parser.parse_args()
    files = sorted(glob.glob(os.path.join(args.input, "**", "*.parquet"), recursive=True)) if os.path.isdir(args.input) else [args.input]
    os.makedirs(args.output, exist_ok=True)
    tasks = [(f, g, args.output, args.images, args.quality, args.max_side) for f in files for g in range(pq.ParquetFile(f).num_row_groups)]
    started = time.perf_counter()
    with Pool(args.num_proc) as pool:
        results = pool.map(convert, tasks, chunksize=1)
    seconds = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "tool": "plain",
        "numProc": args.num_proc,
        "images": args.images,
        "rows": sum(rows for rows, _ in results),
        "rejected": sum(rejected for _, rejected in results),
        "seconds": round(seconds, 3),
        "cpuSeconds": round(children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime, 3),
    }))


if __name__ == "__main__":
    sys.exit(main())
