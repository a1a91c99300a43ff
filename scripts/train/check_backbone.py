"""Checks lsmodel.MobileTrunk with the weights backbone.sh wrote against the
original TensorFlow.js model: block_12's output for a fixed input (uniform
noise in [-1, 1], numpy default_rng(0), 64x64, R=G=B) must equal
testdata/mnv2_block12_noise64.f32, which testdata/mnv2_golden.js computed
with TensorFlow.js 4 (CPU backend) from the npm package's own model.

usage: check_backbone.py [WEIGHTS_DIR]   (default .cache/backbone/mobilenet_v2)
Exit 0 and one line when they agree (relative error < 1e-4), 1 otherwise."""
import os
import sys

import numpy as np
import torch

import lsmodel

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    d = argv[1] if len(argv) > 1 else os.path.join(HERE, "..", "..", ".cache", "backbone", "mobilenet_v2")
    trunk = lsmodel.MobileTrunk()
    trunk.load_keras(lsmodel.read_keras_weights(d))
    trunk.eval()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (64, 64)).astype(np.float32))[None, None]
    with torch.no_grad():
        y = trunk(x).numpy()
    ref = np.fromfile(os.path.join(HERE, "testdata", "mnv2_block12_noise64.f32"), "<f4").reshape(y.shape)
    rel = float(np.linalg.norm(y - ref) / np.linalg.norm(ref))
    print("MobileTrunk %s against TensorFlow.js: max |diff| %.2e, relative error %.2e" % (
        "x".join(map(str, y.shape)), float(np.abs(y - ref).max()), rel))
    return 0 if rel < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
