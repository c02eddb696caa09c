"""The limit: checking every row's image at libjpeg-turbo speed in a bare loop on one core, as Pillow does it when
asked for the least work that still reads all of the compressed data: `draft()` at 1/8 scale for a JPEG (libjpeg's DCT
scaling: every block is entropy-decoded, almost no inverse DCT), a full `load()` for anything else.

Run by `rlaif-v bench`. Prints one JSON line: images, seconds, images/s.

  python bench/limit.py --input DIR
"""

import argparse
import glob
import io
import json
import os
import sys
import time

import pyarrow.parquet as pq
from PIL import Image


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    args = parser.parse_args()
    files = sorted(glob.glob(os.path.join(args.input, "**", "*.parquet"), recursive=True)) if os.path.isdir(args.input) else [args.input]
    images = []
    for path in files:
        images += [value["bytes"] for value in pq.read_table(path, columns=["image"]).column("image").to_pylist()]
    started = time.perf_counter()
    for data in images:
        image = Image.open(io.BytesIO(data))
        if image.format == "JPEG":
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    seconds = time.perf_counter() - started
    print(json.dumps({"tool": "limit", "images": len(images), "seconds": round(seconds, 3), "imagesPerSecond": round(len(images) / seconds, 1)}))


if __name__ == "__main__":
    sys.exit(main())
