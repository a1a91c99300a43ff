#!/usr/bin/python3
"""Build the small ONNX graphs LineSight's inference tests run on.

Writes, under inference/testdata/models/ (each well under 1 MB):

  classify/       model.onnx + manifest.json: a tiny CNN classifier for the six
                  magnetic-tile classes, input "input" [N,3,64,64] RGB NCHW
                  normalised with mean/std, outputs "logits" [N,6] and a
                  class-activation map "cam" [N,6,16,16] (logits are the spatial
                  mean of the map, so the map is a true CAM)
  classify-int8/  the same network with QuantizeLinear/DequantizeLinear pairs
                  inserted (static int8 QDQ: per-channel symmetric int8 weights,
                  per-tensor uint8 activations calibrated on seeded images)
  anomaly/        the Anomalib export signature: input "input" [N,3,64,64] in
                  [0,1]; outputs pred_score [N], pred_label [N] (bool),
                  anomaly_map [N,1,64,64], pred_mask [N,1,64,64] (bool). The map
                  is the distance of each pixel from a local mean (a fixed blur),
                  so a bright spot on a flat tile is an anomaly.
  detect/         the Ultralytics YOLOv8 export signature: input "images"
                  [1,3,64,64] RGB in [0,1], letterboxed; output "output0"
                  [1,4+2,64] (cx, cy, w, h in input pixels, then per-class
                  sigmoid scores) on an 8x8 grid of stride 8. Class 0 ("bright")
                  fires on bright cells, class 1 ("dark") on dark cells.
  nan/            a two-class classifier whose logits are sqrt(mean(x) - 0.5):
                  NaN for a dark image, finite for a bright one (bad-output tests)
  corrupt.onnx    a truncated copy of classify/model.onnx

Everything is seeded (torch.manual_seed) so a rerun reproduces the same
weights; the manifests carry the sha256 of each model.onnx. Run it with the
Debian Python that has torch 1.13 and onnx:  /usr/bin/python3 scripts/models/make_testdata.py
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper, TensorProto

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "inference", "testdata", "models")
LABELS = ["blowhole", "break", "crack", "fray", "free", "uneven"]
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
OPSET = 13


def seed(n):
    torch.manual_seed(n)
    np.random.seed(n)


class TinyCAM(nn.Module):
    """Conv stack -> 1x1 conv to one map per class -> logits = spatial mean."""

    def __init__(self, classes=6):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)   # 32x32
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)  # 16x16
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.head = nn.Conv2d(16, classes, 1)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        cam = self.head(x)
        logits = cam.mean(dim=(2, 3))
        return logits, cam


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def write_manifest(d, m):
    m["model"]["sha256"] = sha256(os.path.join(d, "model.onnx"))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")


def calib_images(n, size=64):
    """Seeded images with structure (gradients, blobs, noise) in [0,1], RGB NCHW."""
    g = torch.Generator().manual_seed(1234)
    imgs = []
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    for i in range(n):
        base = 0.3 + 0.4 * torch.rand(1, generator=g)
        img = base + 0.2 * (xx if i % 2 else yy) + 0.05 * torch.randn(size, size, generator=g)
        cx, cy = torch.rand(2, generator=g)
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.01)
        img = img + (0.4 if i % 3 else -0.4) * blob
        img = img.clamp(0, 1)
        imgs.append(torch.stack([img, img * 0.95, img * 0.9]))
    return torch.stack(imgs)


def export_classifier():
    seed(4)
    net = TinyCAM().eval()
    d = os.path.join(OUT, "classify")
    os.makedirs(d, exist_ok=True)
    x = torch.zeros(1, 3, 64, 64)
    torch.onnx.export(net, x, os.path.join(d, "model.onnx"), input_names=["input"],
                      output_names=["logits", "cam"], opset_version=OPSET,
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}, "cam": {0: "N"}})
    write_manifest(d, classifier_manifest("tiny-cam", "fp32"))
    return net


def classifier_manifest(name, precision):
    return {
        "format": 1,
        "name": name,
        "version": "0.1.0-" + precision,
        "task": "classify",
        "description": "test graph made by scripts/models/make_testdata.py; random weights, not trained",
        "created": "2024-01-01T00:00:00Z",
        "model": {"file": "model.onnx", "sha256": "", "precision": precision, "opset": OPSET},
        "input": {
            "name": "input", "shape": [-1, 3, 64, 64], "layout": "nchw", "channels": "rgb",
            "resize": "stretch", "scale": 1 / 255.0, "mean": MEAN, "std": STD,
        },
        "outputs": [
            {"name": "logits", "role": "logits"},
            {"name": "cam", "role": "heatmap"},
        ],
        "labels": LABELS,
        "good_labels": ["free"],
        "thresholds": {"pass": 0.9, "reject": 0.8},
        "reference": {
            "images": 24,
            "brightness": {"mean": 0.5, "std": 0.1, "p01": 0.25, "p99": 0.8,
                           "edges": [0, 0.2, 0.4, 0.6, 0.8, 1.0],
                           "hist": [0.05, 0.2, 0.5, 0.2, 0.05]},
            "contrast": {"mean": 0.12, "std": 0.03, "p01": 0.05, "p99": 0.2},
            "sharpness": {"mean": 0.01, "std": 0.004, "p01": 0.002, "p99": 0.02},
        },
        "training": {"dataset": "synthetic:seed=1234,n=24", "fingerprint": "sha256:" + "0" * 64,
                     "images": 24, "split": {"train": 0, "val": 24}, "seed": 4,
                     "extra": {"script": "scripts/models/make_testdata.py"}},
        "metrics": {"split": "val", "accuracy": 0.0, "macro_f1": 0.0, "automation_rate": 0.0,
                    "escape_rate": 0.0, "false_reject_rate": 0.0},
    }


def quantize_qdq(net, src, dst):
    """Insert QDQ pairs around every Conv of the exported fp32 graph."""
    ranges = {}

    def hook(name):
        def f(mod, inp, out):
            t = inp[0].detach()
            lo, hi = ranges.get(name, (0.0, 0.0))
            ranges[name] = (min(lo, float(t.min())), max(hi, float(t.max())))
        return f

    hs = [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        net((calib_images(32) - mean) / std)
    for h in hs:
        h.remove()

    model = onnx.load(src)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes = []
    for node in g.node:
        if node.op_type != "Conv":
            new_nodes.append(node)
            continue
        wname = node.input[1]
        mod = wname.rsplit(".", 1)[0]
        if mod not in ranges:
            sys.exit("no calibration range for conv weight %s (have %s)" % (wname, sorted(ranges)))
        lo, hi = ranges[mod]
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = max((hi - lo) / 255.0, 1e-8)
        zp = int(round(-lo / scale))
        a = node.input[0]
        s_name, z_name = mod + ".act_scale", mod + ".act_zp"
        g.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), s_name),
                              numpy_helper.from_array(np.array(zp, np.uint8), z_name)])
        new_nodes.append(helper.make_node("QuantizeLinear", [a, s_name, z_name], [a + "_q"], name=mod + "_aq"))
        new_nodes.append(helper.make_node("DequantizeLinear", [a + "_q", s_name, z_name], [a + "_dq"], name=mod + "_adq"))
        w = numpy_helper.to_array(inits[wname])
        ws = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127.0, 1e-8).astype(np.float32)
        wq = np.clip(np.round(w / ws.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
        g.initializer.remove(inits[wname])
        g.initializer.extend([numpy_helper.from_array(wq, wname + "_q"),
                              numpy_helper.from_array(ws, wname + "_scale"),
                              numpy_helper.from_array(np.zeros(w.shape[0], np.int8), wname + "_zp")])
        new_nodes.append(helper.make_node("DequantizeLinear", [wname + "_q", wname + "_scale", wname + "_zp"],
                                          [wname + "_dq"], name=mod + "_wdq", axis=0))
        node.input[0] = a + "_dq"
        node.input[1] = wname + "_dq"
        new_nodes.append(node)
    del g.node[:]
    g.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, dst)


def export_classifier_int8(net):
    d = os.path.join(OUT, "classify-int8")
    os.makedirs(d, exist_ok=True)
    quantize_qdq(net, os.path.join(OUT, "classify", "model.onnx"), os.path.join(d, "model.onnx"))
    write_manifest(d, classifier_manifest("tiny-cam", "int8"))


class TinyAnomaly(nn.Module):
    """Anomalib-shaped: map = |x - blur(x)| averaged over channels."""

    def __init__(self):
        super().__init__()
        k = torch.ones(3, 1, 9, 9) / 81.0
        self.register_buffer("k", k)

    def forward(self, x):
        blur = F.conv2d(F.pad(x, (4, 4, 4, 4), mode="replicate"), self.k, groups=3)
        amap = (x - blur).abs().mean(dim=1, keepdim=True) * 4.0
        amap = amap.clamp(0, 1)
        score = amap.flatten(1).max(dim=1).values
        return score, score > 0.5, amap, amap > 0.5


def export_anomaly():
    d = os.path.join(OUT, "anomaly")
    os.makedirs(d, exist_ok=True)
    torch.onnx.export(TinyAnomaly().eval(), torch.zeros(1, 3, 64, 64), os.path.join(d, "model.onnx"),
                      input_names=["input"], output_names=["pred_score", "pred_label", "anomaly_map", "pred_mask"],
                      opset_version=OPSET,
                      dynamic_axes={n: {0: "N"} for n in ["input", "pred_score", "pred_label", "anomaly_map", "pred_mask"]})
    write_manifest(d, {
        "format": 1, "name": "tiny-anomaly", "version": "0.1.0", "task": "anomaly",
        "description": "Anomalib export signature; a fixed local-contrast detector, not trained",
        "model": {"file": "model.onnx", "sha256": "", "precision": "fp32", "opset": OPSET},
        "input": {"name": "input", "shape": [-1, 3, 64, 64], "layout": "nchw", "channels": "rgb",
                  "resize": "stretch", "scale": 1 / 255.0},
        "outputs": [{"name": "pred_score", "role": "score"}, {"name": "pred_label", "role": "label"},
                    {"name": "anomaly_map", "role": "anomaly_map"}, {"name": "pred_mask", "role": "mask"}],
        "labels": ["good", "anomalous"], "good_labels": ["good"],
        "thresholds": {"pass": 0.9, "reject": 0.5, "anomaly": 0.5},
    })


class TinyYolo(nn.Module):
    """YOLOv8-shaped head on an 8x8 grid: boxes are cell-centred 16x16 squares."""

    def __init__(self, size=64, stride=8):
        super().__init__()
        n = size // stride
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        cx = (xs.flatten().float() + 0.5) * stride
        cy = (ys.flatten().float() + 0.5) * stride
        wh = torch.full_like(cx, 2.0 * stride)
        self.register_buffer("boxes", torch.stack([cx, cy, wh, wh]).unsqueeze(0))  # [1,4,N]
        self.stride = stride

    def forward(self, x):
        lum = x.mean(dim=1, keepdim=True)
        cell = F.avg_pool2d(lum, self.stride)  # [1,1,8,8]
        flat = cell.flatten(2)  # [1,1,N]
        bright = torch.sigmoid((flat - 0.7) * 40.0)
        dark = torch.sigmoid((0.2 - flat) * 40.0)
        return torch.cat([self.boxes.expand(x.shape[0], -1, -1), bright, dark], dim=1)


def export_detect():
    d = os.path.join(OUT, "detect")
    os.makedirs(d, exist_ok=True)
    torch.onnx.export(TinyYolo().eval(), torch.zeros(1, 3, 64, 64), os.path.join(d, "model.onnx"),
                      input_names=["images"], output_names=["output0"], opset_version=OPSET)
    write_manifest(d, {
        "format": 1, "name": "tiny-yolo", "version": "0.1.0", "task": "detect",
        "description": "Ultralytics YOLOv8 export signature; fixed brightness detector, not trained",
        "model": {"file": "model.onnx", "sha256": "", "precision": "fp32", "opset": OPSET},
        "input": {"name": "images", "shape": [1, 3, 64, 64], "layout": "nchw", "channels": "rgb",
                  "resize": "letterbox", "pad_value": 114, "scale": 1 / 255.0},
        "outputs": [{"name": "output0", "role": "boxes", "box_format": "cxcywh"}],
        "labels": ["bright", "dark"], "good_labels": [],
        "thresholds": {"pass": 0.9, "reject": 0.5, "score": 0.5, "iou": 0.45},
    })


class NaNOnDark(nn.Module):
    def forward(self, x):
        m = x.mean(dim=(1, 2, 3)).unsqueeze(1) - 0.5
        return torch.cat([torch.sqrt(m), -torch.sqrt(m)], dim=1)


def export_nan():
    d = os.path.join(OUT, "nan")
    os.makedirs(d, exist_ok=True)
    torch.onnx.export(NaNOnDark().eval(), torch.ones(1, 3, 16, 16), os.path.join(d, "model.onnx"),
                      input_names=["input"], output_names=["logits"], opset_version=OPSET,
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    write_manifest(d, {
        "format": 1, "name": "nan-on-dark", "version": "0.1.0", "task": "classify",
        "description": "logits are NaN for dark images: a bad-output test graph",
        "model": {"file": "model.onnx", "sha256": "", "precision": "fp32", "opset": OPSET},
        "input": {"name": "input", "shape": [-1, 3, 16, 16], "layout": "nchw", "channels": "rgb",
                  "resize": "stretch", "scale": 1 / 255.0},
        "outputs": [{"name": "logits", "role": "logits"}],
        "labels": ["good", "defect"], "good_labels": ["good"],
        "thresholds": {"pass": 0.9, "reject": 0.9},
    })


def main():
    os.makedirs(OUT, exist_ok=True)
    net = export_classifier()
    export_classifier_int8(net)
    export_anomaly()
    export_detect()
    export_nan()
    src = os.path.join(OUT, "classify", "model.onnx")
    with open(src, "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, "corrupt.onnx"), "wb") as f:
        f.write(data[: len(data) // 3])
    for root, _, files in sorted(os.walk(OUT)):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            print("%8d  %s" % (os.path.getsize(p), os.path.relpath(p, ROOT)))


if __name__ == "__main__":
    main()
