"""Per-image costs in Pillow, for `npm run bench:bounds`: reads framed images on stdin (a 4-byte little-endian length,
then the bytes, for each) and prints one JSON object of per-image milliseconds, the best of two passes, for:

- draft: the limit loop's check (bench/limit.py): draft() at 1/8 scale for a JPEG, a full load() otherwise;
- load: a full load(), what the plain script (bench/plain.py) does in keep mode;
- jpeg75: convert("RGB") and save as JPEG quality 75, what the plain script does with --images jpeg.
"""

import io
import json
import sys
import time

from PIL import Image


def draft(data):
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
    image.load()


def load(data):
    Image.open(io.BytesIO(data)).load()


def jpeg75(data):
    Image.open(io.BytesIO(data)).convert("RGB").save(io.BytesIO(), format="JPEG", quality=75)


def main():
    data = sys.stdin.buffer.read()
    images, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "little")
        images.append(data[at + 4:at + 4 + size])
        at += 4 + size
    costs = {}
    for name, run in (("draft", draft), ("load", load), ("jpeg75", jpeg75)):
        best = [float("inf")] * len(images)
        for _ in range(2):
            for i, image in enumerate(images):
                started = time.perf_counter()
                run(image)
                best[i] = min(best[i], (time.perf_counter() - started) * 1000)
        costs[name] = best
    print(json.dumps(costs))


if __name__ == "__main__":
    sys.exit(main())
