#!/usr/bin/python3
"""Write the training preprocessing of some images as raw float32, for the
training-serving skew test (inference/eval/skew_test.go).

    /usr/bin/python3 scripts/train/preprocess_dump.py --size S|WxH [--resize letterbox --pad P] [--orient landscape] --out FILE [--stats FILE2] IMAGE...

FILE gets, for each image in order, W*H little-endian float32 values: exactly
what train.py feeds the serving graph (lsdata.preprocess), before the
in-graph standardisation. FILE2 gets, for each image, the reference
statistics train.py records (brightness, contrast, sharpness of
lsdata.input_content) as three little-endian float64 values.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lsdata  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", required=True, help="S (square) or WxH")
    p.add_argument("--out", required=True)
    p.add_argument("--resize", choices=["stretch", "letterbox"], default="stretch")
    p.add_argument("--pad", type=int, default=0, help="letterbox padding (pixel value)")
    p.add_argument("--orient", choices=lsdata.ORIENTS, default="none")
    p.add_argument("--stats", help="also write the input statistics here")
    p.add_argument("images", nargs="+")
    a = p.parse_args()
    w, _, h = a.size.partition("x")
    size = (int(w), int(h)) if h else int(w)
    stats = []
    with open(a.out, "wb") as f:
        for path in a.images:
            try:
                x = lsdata.preprocess(path, size, mode=a.resize, pad=a.pad, orient=a.orient)
            except lsdata.DatasetError as e:
                print("preprocess_dump: %s" % e, file=sys.stderr)
                return 2
            f.write(x.astype("<f4").tobytes())
            if a.stats:
                stats.append(lsdata.measure(lsdata.input_content(lsdata.read_gray(path), size, a.resize, orient=a.orient)))
    if a.stats:
        with open(a.stats, "wb") as f:
            f.write(np.asarray(stats, "<f8").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
