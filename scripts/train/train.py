#!/usr/bin/python3
"""Train a LineSight tile classifier and write a model package.

    /usr/bin/python3 scripts/train/train.py --data DATASET --out DIR [options]

DATASET is ROOT/CLASS/NAME.jpg (the magnetic-tile layout, `linesight synth`
output, or a fleet collector export); *_mask.* files are ignored. The script

  1. checks the dataset (empty class folders, unreadable images, a single
     class: a clear error before any training);
  2. splits it, stratified per class and seeded, into train / val / test,
     after taking out every file whose name starts with a --holdout prefix
     (e.g. exp5_, an exposure group kept entirely out of training); with
     --group-exposures GAP a part's photos at several exposures stay in one
     split, so val and test hold only parts training never saw;
  3. trains (augmentation: exposure gain and gamma, contrast, flips, small
     rotations and scaling, noise; classes drawn in proportion to the
     square root of their counts, and with --balance full the loss weighted
     so that every class counts alike), showing progress;
  4. calibrates the pass and reject thresholds on val for the target escape
     and false-reject rates (with --folds K: on the out-of-fold predictions
     of K networks trained on K folds of train+val, whose ensemble is served);
  5. writes DIR/model.onnx + DIR/manifest.json (fp32) and DIR/int8/ (int8
     static QDQ, calibrated on training images, thresholds calibrated on its
     own simulated outputs), DIR/split.json (which file went where) and
     DIR/heldout/{val,test,HOLDOUT}/CLASS/NAME.jpg symlinks for
     `linesight model eval --data` (and DIR/trained/ for the training
     split's).

Options beyond the original recipe (all off by default, so `make model`
is unchanged): --arch segnet|plainseg (a segmentation head trained on the
*_mask.* files, the cam output, and a decision layer on global average and
max pooling), --arch mnv2seg with --pretrained DIR, --freeze N and
--pretrained-lr LR (those heads on a MobileNetV2 trunk started from
ImageNet-trained weights that scripts/train/backbone.sh fetches), --arch
A+B (an ensemble of different segmentation networks), --resize letterbox --pad P, --size WxH with --orient
landscape (a non-square input; parts taller than wide turned a quarter so their long side lies along its
width, as the Go engine does with the manifest's input.orient), --defect-weight W, --folds K,
--edge-chips P and --chip-slivers Q (synthetic chipped edges and slivers;
--window-edge-chips P: the training windows' own probability; --chip-fill
bite|bright: chips darker and ragged as the real breaks, or bright only),
--edge-shade P (dark bowed bands along a side, as the tiles' curved ends, label kept),
--windows OVERLAP (elongated photos also scored in square windows), --corners F
(every photo also scored in its four corners, magnified),
--synth-defects P (synthetic pits, thin lines and texture patches),
--transplant P (real training defects pasted into good images), --crop-prob
P (random crops, relabelled by their masks), --ema D (averaged weights),
--save-nets FILE and --prior-fit (the good classes' logits shifted so that
P(good) is calibrated for the data's class mix).

Everything is seeded; with the same data, options and thread count a rerun
gives the same weights.
"""
import argparse
import copy
import ctypes
import datetime
import json
import math
import os
import random
import re
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calib  # noqa: E402
import lsdata  # noqa: E402
import lsmodel  # noqa: E402

SCRIPT_VERSION = "1"
# architectures with a segmentation head trained on the defect masks
SEG_ARCHS = ("segnet", "plainseg", "mnv2seg")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset root: CLASS/NAME.jpg")
    p.add_argument("--out", required=True, help="output package directory (created)")
    p.add_argument("--name", default="tile-classifier")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--description", default="")
    p.add_argument("--dataset-name", default="", help="how the manifest names the dataset (default: its absolute path)")
    p.add_argument("--good", action="append", default=None, help="good label(s) (default free)")
    p.add_argument("--size", default="160",
                   help="input side in pixels, or WxH (multiples of 16; a non-square input wants W >= H and, "
                        "for parts photographed either way round, --orient landscape)")
    p.add_argument("--orient", choices=lsdata.ORIENTS, default="none",
                   help="landscape: an image taller than wide is turned a quarter clockwise after the resize, so a "
                        "part's long side always lies along the input's width (the manifest's input.orient)")
    p.add_argument("--width", type=int, default=16, help="channels of the first conv (x2, x4, x8 deeper)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--samples-per-epoch", type=int, default=2048,
                   help="images drawn (class-balanced, with replacement) per epoch; 0: the training split's size")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--val-frac", type=float, default=0.15)
    p.add_argument("--test-frac", type=float, default=0.15)
    p.add_argument("--group-exposures", type=int, default=0, metavar="GAP",
                   help="keep a part's photos at several exposures in one split: names CLASS/expE_num_N.jpg of one "
                        "class whose N lie within GAP of the previous and whose E increase are one part (the "
                        "magnetic-tile set's naming; default 0: split per image)")
    p.add_argument("--holdout", action="append", default=[],
                   help="file-name prefix held out of training entirely (repeatable), e.g. exp5_")
    p.add_argument("--max-per-class", type=int, default=0, help="use at most this many images per class (smoke tests)")
    p.add_argument("--balance", choices=["sqrt", "full"], default="sqrt",
                   help="class balance: sqrt = sampling weights 1/sqrt(n) (classes drawn in proportion to sqrt(n)); "
                        "full = also loss weights 1/sqrt(n) (every class equally)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation in the graph (4 flips)")
    p.add_argument("--arch", default="tilenet", metavar="|".join(sorted(lsmodel.ARCHS)),
                   help="tilenet: CAM head, logits = its global average; segnet: the same backbone with a "
                        "segmentation head trained on the *_mask.* files (the cam output) and a decision layer on "
                        "global average and max pooling; plainseg: segnet on a plain backbone (full-resolution "
                        "first conv, 2x2 max pooling); mnv2seg: segnet's heads on a MobileNetV2 trunk (see "
                        "--pretrained). A+B (segmentation architectures only): the ensemble's networks take "
                        "them in turn")
    p.add_argument("--pretrained", default="", metavar="DIR",
                   help="mnv2seg: start the MobileNetV2 trunk from these weights (a TensorFlow.js weights folder: "
                        "manifest.json + weights.bin; scripts/train/backbone.sh writes one)")
    p.add_argument("--pretrained-lr", type=float, default=0.0, metavar="LR",
                   help="mnv2seg with --pretrained: its learning rate (default --lr), so a pretrained trunk can "
                        "move more slowly than a network learnt from scratch beside it")
    p.add_argument("--freeze", type=int, default=0, metavar="N",
                   help="mnv2seg: keep the trunk's first N layers as loaded (weights and batch-norm statistics)")
    p.add_argument("--resize", choices=["stretch", "letterbox"], default="stretch",
                   help="stretch to SxS, or letterbox: keep the aspect ratio, pad with --pad")
    p.add_argument("--pad", type=int, default=0, help="letterbox padding value (0..255; 0 keeps exposure gain a "
                                                       "pure scale of the input, which the standardisation cancels)")
    p.add_argument("--channels-last", action="store_true",
                   help="train in channels-last memory layout (oneDNN's fast path on CPU: 1.3-1.6x faster here; "
                        "other rounding, so other weights than without)")
    p.add_argument("--edge-chips", type=float, default=0.0, metavar="P",
                   help="synthetic chipped edges: a good training image becomes, with probability P, an image of "
                        "--edge-chip-class with a piece missing at its border (and that piece in its mask)")
    p.add_argument("--window-edge-chips", type=float, default=None, metavar="P",
                   help="--windows: the --edge-chips probability for the training windows, the whole photos keep "
                        "--edge-chips (default: the same as --edge-chips); a thin break along a long photo's edge "
                        "is seen in its windows, while chips on whole views make good parts' own edges suspect")
    p.add_argument("--edge-chip-class", default="break", help="the class of a chipped edge (default break)")
    p.add_argument("--edge-shade", type=float, default=0.0, metavar="P",
                   help="shaded edges: a training image of any class gets, with probability P, one side darkened "
                        "in a band that bows as the tiles' curved ends do, its label kept (the good parts' own dark "
                        "edges are what synthetic chips make suspect; default 0)")
    p.add_argument("--chip-fill", choices=CHIP_FILLS, default="texture",
                   help="what shows in a synthetic chip: texture (another image's, shifted, x0.5..1.7; the "
                        "default), bite (as the real breaks of the magnetic tiles: the part's own level darker, "
                        "x0.45..1 for most, its grain fainter and turned across, a ragged outline, a bright "
                        "fracture rim on half of them) or bright (texture x1.1..1.7: no dark chips)")
    p.add_argument("--chip-slivers", type=float, default=0.0, metavar="Q",
                   help="this fraction of the synthetic chips are slivers: a thin piece along a side (30-100 %% of "
                        "it, 1-3.5 %% deep), as a tile broken along its edge (default 0)")
    p.add_argument("--synth-defects", type=float, default=0.0, metavar="P",
                   help="this fraction of the good training images get a synthetic defect of a random kind from "
                        "--synth-kinds, with its mask (default 0)")
    p.add_argument("--synth-border", type=float, default=0.1, metavar="F",
                   help="synthetic pits and the start of a synthetic crack lie at least F of the height and width "
                        "from the border (default 0.1; 0.02 puts as many pits within a tenth of a border as the "
                        "real blowholes there, about a third)")
    p.add_argument("--synth-kinds", default="pit=blowhole,crack=crack,region=uneven", metavar="KIND=CLASS,...",
                   help="synthetic defect kinds and the class each is labelled: pit (small dark pits), crack (a thin "
                        "dark meandering line), region (a large patch of changed brightness and texture) "
                        "(default pit=blowhole,crack=crack,region=uneven)")
    p.add_argument("--crop-prob", type=float, default=0.0, metavar="P",
                   help="segnet: this fraction of the training images is a random square crop (--crop-min..1 of the "
                        "side) scaled back up; a defect image whose defect lies outside the crop becomes good "
                        "(needs masks; default 0)")
    p.add_argument("--crop-min", type=float, default=0.6, help="smallest crop side, as a fraction (default 0.6)")
    p.add_argument("--windows", type=float, default=0.0, metavar="OVERLAP",
                   help="square input: also score square windows of an elongated photo's short side along its long "
                        "side (overlapping by at least OVERLAP of the side, e.g. 0.25), each resized to the input, "
                        "so a thin defect keeps more pixels; the part's P(good) is the lowest of the whole view's "
                        "and the windows' (the manifest's input.windows). Training adds the training photos' "
                        "windows, relabelled by their masks (default 0: whole photos only)")
    p.add_argument("--window-min-aspect", type=float, default=1.3, metavar="R",
                   help="--windows: only photos whose long side is at least R times the short one get windows "
                        "(default 1.3)")
    p.add_argument("--corners", type=float, default=0.0, metavar="F",
                   help="square input: also score every photo's four corners, squares of F times its short side "
                        "(0.5: twice the scale of the whole view), the lowest P(good) of all views deciding (the "
                        "manifest's input.windows.corners). Training adds the training photos' corners, relabelled "
                        "by their masks, drawn together as often as their photo (default 0: none)")
    p.add_argument("--view-draws", choices=["label", "photo"], default="label",
                   help="--windows/--corners: how often a photo's views are drawn in training. label (default): each "
                        "view counts in the class it is labelled, so the views its mask misses swell the good class "
                        "and its whole photos are drawn less often; photo: a photo's windows, and its corners, are "
                        "drawn together as often as the photo itself, at its class's rate, and whole photos keep "
                        "the draws they have without views")
    p.add_argument("--ema", type=float, default=0.0, metavar="D",
                   help="serve an exponential moving average of the weights (decay D per step, e.g. 0.998; "
                        "batch-norm statistics averaged too; default 0: the last weights)")
    p.add_argument("--transplant", type=float, default=0.0, metavar="P",
                   help="defect transplant (needs --arch segnet or plainseg, i.e. masks): a good training image "
                        "becomes, with probability P, an image of a defect class with a real training defect "
                        "pasted in at its place, brightness matched (and that defect's mask)")
    p.add_argument("--prior-fit", action="store_true",
                   help="fit a shift of the good classes' logits on the calibration split (maximum likelihood, "
                        "Platt's targets) so that P(good) is calibrated for the data's class mix, and put it in the "
                        "graph; for recipes whose training mix is far from the line's (--transplant, --edge-chips)")
    p.add_argument("--geo-prob", type=float, default=0.3,
                   help="share of training images given the small rotation, zoom-in and shift (0: none; the zoom-in "
                        "crops the border, where a chipped edge is)")
    p.add_argument("--seg-weight", type=float, default=1.0, help="segnet: weight of the mask loss")
    p.add_argument("--seg-pos-weight", type=float, default=4.0, help="segnet: weight of a defect cell against a good one")
    p.add_argument("--defect-weight", type=float, default=0.0,
                   help="extra loss -log(1-P(good)) on defective images, times this (escapes cost more than deferrals)")
    p.add_argument("--folds", type=int, default=0,
                   help="K >= 2: train K networks on K folds of train+val (stratified, seeded), calibrate the "
                        "thresholds on their out-of-fold predictions, serve their ensemble")
    p.add_argument("--ensemble", type=int, default=1, help="networks averaged in the graph (seeds seed, seed+1, ...)")
    p.add_argument("--target-escape", type=float, default=0.01)
    p.add_argument("--target-false-reject", type=float, default=0.02)
    p.add_argument("--calib-images", type=int, default=128, help="training images for int8 calibration")
    p.add_argument("--no-int8", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--malloc", choices=("keep", "default"), default="keep",
                   help="keep: glibc's malloc keeps freed memory for the next allocation (faster, the same weights; "
                        "keep_freed_memory); default: the C library's own settings, for timing side by side "
                        "(scripts/train/bench.sh)")
    p.add_argument("--no-links", action="store_true", help="do not write the heldout/ and trained/ symlink folders")
    p.add_argument("--save-val-scores", default="", metavar="FILE",
                   help="also write the calibration split's files, classes and fp32 class probabilities to FILE "
                        "(JSON), e.g. to compare or combine models offline")
    p.add_argument("--save-nets", default="", metavar="FILE",
                   help="also save the trained networks (torch state dicts, with the options that built them) to FILE")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", a.size)
    if not m:
        p.error("--size %r: want a side in pixels (160) or WxH (192x128)" % a.size)
    a.size_w = int(m.group(1))
    a.size_h = int(m.group(2) or m.group(1))
    if any(v % 16 or v < 32 for v in (a.size_w, a.size_h)):
        p.error("--size %s: each side must be a multiple of 16, at least 32" % a.size)
    if a.orient == "landscape" and a.size_h > a.size_w:
        p.error("--orient landscape lays a part's long side along the width, but --size %s is taller than wide: "
                "give W >= H" % a.size)
    a.size = a.size_w if a.size_w == a.size_h else (a.size_w, a.size_h)
    for f in ("val_frac", "test_frac"):
        if not 0 <= getattr(a, f) < 0.5:
            p.error("--%s must be in [0, 0.5)" % f.replace("_", "-"))
    if a.epochs < 1 or a.ensemble < 1 or a.batch < 2:
        p.error("--epochs and --ensemble must be >= 1, --batch >= 2")
    if a.folds == 1 or a.folds < 0 or (a.folds and a.ensemble > 1):
        p.error("--folds must be 0 or >= 2, and not with --ensemble")
    if not 0 <= a.edge_chips <= 1:
        p.error("--edge-chips must be in [0, 1]")
    if a.window_edge_chips is None:
        a.window_edge_chips = a.edge_chips
    elif not (a.windows or a.corners):
        p.error("--window-edge-chips is for --windows or --corners (the training windows' chips)")
    elif not 0 <= a.window_edge_chips <= 1:
        p.error("--window-edge-chips must be in [0, 1]")
    if a.view_draws != "label" and not (a.windows or a.corners):
        p.error("--view-draws is for --windows or --corners (how often their views are drawn)")
    if not 0 <= a.edge_shade <= 1:
        p.error("--edge-shade must be in [0, 1]")
    if not 0 <= a.chip_slivers <= 1:
        p.error("--chip-slivers must be in [0, 1]")
    if not 0 <= a.synth_defects <= 1:
        p.error("--synth-defects must be in [0, 1]")
    if not 0 <= a.synth_border < 0.5:
        p.error("--synth-border must be in [0, 0.5)")
    if not 0 <= a.crop_prob <= 1 or not 0.2 <= a.crop_min <= 1:
        p.error("--crop-prob must be in [0, 1] and --crop-min in [0.2, 1]")
    a.archs = a.arch.split("+")
    for x in a.archs:
        if x not in lsmodel.ARCHS:
            p.error("--arch %s: no architecture %r (have %s)" % (a.arch, x, ", ".join(sorted(lsmodel.ARCHS))))
    a.seg = all(x in SEG_ARCHS for x in a.archs)
    if len(a.archs) > 1 and not a.seg:
        p.error("--arch %s: only segmentation architectures (%s) mix in one ensemble" % (a.arch, ", ".join(SEG_ARCHS)))
    if not 0 <= a.corners < 1:
        p.error("--corners must be in [0, 1): the corner views' side, a fraction of the photo's short side (e.g. 0.5)")
    if a.windows or a.corners:
        opt = "--windows" if a.windows else "--corners"
        if a.windows and (not 0 < a.windows < 1 or a.window_min_aspect < 1):
            p.error("--windows must be in (0, 1) (the windows' overlap) and --window-min-aspect at least 1")
        if a.size_w != a.size_h:
            p.error("%s scores square windows: give a square --size (e.g. 160), not %s" % (opt, a.size))
        if not a.seg:
            p.error("%s needs the defect masks to label each window: use it with --arch segnet, plainseg "
                    "or mnv2seg" % opt)
        if a.folds:
            p.error("%s does not combine with --folds" % opt)
    if a.crop_prob > 0 and not a.seg:
        p.error("--crop-prob needs the defect masks: use it with --arch segnet, plainseg or mnv2seg")
    if not 0 <= a.ema < 1:
        p.error("--ema must be in [0, 1)")
    if not 0 <= a.transplant <= 1:
        p.error("--transplant must be in [0, 1]")
    if a.transplant > 0 and not a.seg:
        p.error("--transplant needs the defect masks: use it with --arch segnet, plainseg or mnv2seg")
    if not 0 <= a.pad <= 255:
        p.error("--pad must be in [0, 255]")
    if (a.pretrained or a.freeze or a.pretrained_lr) and "mnv2seg" not in a.archs:
        p.error("--pretrained, --pretrained-lr and --freeze are for --arch mnv2seg (the MobileNetV2 trunk)")
    if not 0 <= a.freeze <= len(lsmodel.MNV2_BLOCKS) + 1:
        p.error("--freeze must be in [0, %d] (the trunk's layers)" % (len(lsmodel.MNV2_BLOCKS) + 1))
    if a.pretrained:
        for f in ("manifest.json", "weights.bin"):
            if not os.path.isfile(os.path.join(a.pretrained, f)):
                p.error("--pretrained %s has no %s: run scripts/train/backbone.sh %s to write the MobileNetV2 "
                        "weights there" % (a.pretrained, f, a.pretrained))
    return a


def log(*a):
    print(*a, flush=True)


def cpu_description(cpuinfo, torch_config):
    """Where a training ran, for the manifest: the CPU's model name (from
    /proc/cpuinfo's text) and the instruction set torch's kernels used (from
    torch.__config__.show()). The same seeds give the same weights only on
    the same kernels: oneDNN rounds differently with AVX2 than with AVX-512."""
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo or "", re.M)
    k = re.search(r"CPU capability usage:\s*(\S+)", torch_config or "")
    return "%s (torch kernels: %s)" % (m.group(1).strip() if m else "unknown CPU", k.group(1) if k else "unknown")


def this_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        import platform
        info = "model name: " + (platform.processor() or "unknown CPU")
    return cpu_description(info, torch.__config__.show())


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4


def keep_freed_memory():
    """Tells glibc's malloc to keep freed memory for the next allocation
    instead of handing it back to the kernel: no allocation from mmap, no
    trimming of the heap. A training or scoring step frees and allocates the
    same tens of megabytes of activations again and again; by default each
    large block is a fresh mmap whose pages the kernel faults in and zeroes
    on first touch. Measured side by side on 2 cores (README, Models,
    session 17; scripts/train/bench.sh): the scoring and int8 simulation
    after training 0.30x its time (22 s instead of 72 s), an epoch of both
    networks 0.92-0.97x, the model files the same byte for byte. The
    price: the heap keeps what it held until the process exits (peak
    resident memory 3.3 GB against 2.6 GB). Returns whether the settings
    took (False where the C library is not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1
        ok = libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1) == 1 and ok
        return libc.mallopt(M_TOP_PAD, 64 << 20) == 1 and ok
    except (OSError, AttributeError):
        return False


EXPOSURE_NAME = re.compile(r"exp(\d+)_num_(\d+)\.")


def exposure_groups(rels, gap):
    """Photos of one part at several exposures, from names CLASS/expE_num_N.EXT
    (the magnetic-tile set's): within a class, sorted by N, a photo joins the
    previous one's group when its N is at most gap above it and its E is
    higher. Returns rel -> group key; a name without that pattern is a group
    of its own."""
    by = {}
    out = {}
    for r in rels:
        c, base = os.path.split(r)
        m = EXPOSURE_NAME.match(base)
        if not m:
            out[r] = r
            continue
        by.setdefault(c, []).append((int(m.group(2)), int(m.group(1)), r))
    for c, l in by.items():
        l.sort()
        key, prev = None, None
        for n, e, r in l:
            if prev is None or n - prev[0] > gap or e <= prev[1]:
                key = "%s/%d" % (c, n)
            out[r] = key
            prev = (n, e)
    return out


def split(files, classes, holdout, val_frac, test_frac, seed, max_per_class, group_gap=0):
    """Stratified per class, seeded. Returns dict name -> list of (rel, class).

    group_gap > 0 keeps a part's photos together (exposure_groups): whole
    groups go to test, val or train, drawn in a seeded order until each
    split has its share of the class's images; a class's last group always
    goes to train."""
    rng = random.Random(seed)
    out = {"train": [], "val": [], "test": []}
    held = {}
    for rel, c in files:
        base = os.path.basename(rel)
        for h in holdout:
            if base.startswith(h):
                held.setdefault(h.rstrip("_"), []).append((rel, c))
                break
    heldset = {r for v in held.values() for r, _ in v}
    groups = exposure_groups([r for r, _ in files if r not in heldset], group_gap) if group_gap > 0 else None
    for c in classes:
        fs = [(r, cc) for r, cc in files if cc == c and r not in heldset]
        rng.shuffle(fs)
        if max_per_class:
            fs = fs[:max_per_class]
        n = len(fs)
        nt = int(round(n * test_frac)) if n >= 3 else 0
        nv = int(round(n * val_frac)) if n >= 3 else 0
        if n >= 3 and val_frac > 0:
            nv = max(nv, 1)
        if n - nt - nv < 1:
            raise lsdata.DatasetError("class %s has %d images after hold-outs: too few to train on" % (c, n))
        if groups is None:
            out["test"] += fs[:nt]
            out["val"] += fs[nt:nt + nv]
            out["train"] += fs[nt + nv:]
            continue
        order, members = [], {}
        for f in fs:
            k = groups[f[0]]
            if k not in members:
                order.append(k)
                members[k] = []
            members[k].append(f)
        got = {"test": 0, "val": 0}
        for j, k in enumerate(order):
            dst = "train"
            for name, want in (("test", nt), ("val", nv)):
                # the last group always trains: a class never leaves training
                if got[name] < want and j < len(order) - 1:
                    dst = name
                    break
            if dst != "train":
                got[dst] += len(members[k])
            out[dst] += members[k]
    for k in out:
        out[k].sort()
    for k in held:
        out[k] = sorted(held[k])
    return out


def augment(x, gen, extra=None, geo_prob=0.3):
    """x: [B,1,S,S] float in [0,1]. Exposure, contrast, gamma, flips, rotation/scale, noise.

    extra ([B,2,S,S]: defect mask, content), when given, gets the same
    geometric transforms and is returned too; the padding outside the content
    stays 0 through the photometric ones."""
    b = x.shape[0]
    # a copy (the cat is one): only the rows drawn are flipped, and below
    # resampled, in place, the same values as transforming every row and
    # keeping those, in half the time
    x = torch.cat([x, extra], 1) if extra is not None else x.clone()
    r = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    # flips
    fh = torch.nonzero(r(b) < 0.5).flatten()
    fv = torch.nonzero(r(b) < 0.5).flatten()
    x[fh] = x[fh].flip(3)
    x[fv] = x[fv].flip(2)
    # small rotation with a slight zoom-in, and a shift: the zoom keeps the
    # borders inside the image (mirrored borders would fake chipped edges)
    ang = (r(b) * 2 - 1) * math.radians(4)
    sc = 1.04 + r(b) * 0.08
    tx, ty = (r(b) * 2 - 1) * 0.03, (r(b) * 2 - 1) * 0.03
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    # affine_grid works in coordinates normalised per side: on a non-square
    # input the rotation's off-diagonal terms carry the aspect ratio (1 on a
    # square one)
    hw = x.shape[2] / x.shape[3]
    theta = torch.stack([torch.stack([cos, -sin * hw, tx], 1), torch.stack([sin / hw, cos, ty], 1)], 1)
    # Only some images: resampling blurs fine texture, and a model that only
    # ever saw blurred tiles takes the sharp grinding marks of real ones for
    # cracks.
    geo = torch.nonzero(r(b) < geo_prob).flatten()
    if len(geo):
        grid = F.affine_grid(theta[geo], (len(geo),) + tuple(x.shape[1:]), align_corners=False)
        x[geo] = F.grid_sample(x[geo], grid, mode="bilinear", padding_mode="border", align_corners=False)
    if extra is not None:
        x, extra = x[:, :1], (x[:, 1:] > 0.5).float()
    # exposure: gain (with saturation), gamma, contrast about the mean
    gain = torch.exp((r(b) * 2 - 1) * math.log(1.8)).view(-1, 1, 1, 1)
    x = (x * gain).clamp(0, 1)
    gamma = torch.exp((r(b) * 2 - 1) * math.log(1.3)).view(-1, 1, 1, 1)
    x = x.clamp_min(1e-4) ** gamma
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    con = (0.8 + 0.4 * r(b)).view(-1, 1, 1, 1)
    x = ((x - m) * con + m).clamp(0, 1)
    # sensor noise and 8-bit quantisation
    sig = (r(b) * 0.01).view(-1, 1, 1, 1)
    x = (x + sig * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    x = torch.round(x * 255) / 255
    if extra is None:
        return x
    return x * extra[:, 1:2], extra


def pick_good(b, yb, gen, prob, good_idx):
    """The rows of a batch of b that get a synthetic defect: good images
    (every row with good_idx None), each with probability prob (one draw
    from gen per row); and r(), one more uniform draw from gen per call."""
    sel = torch.rand(b, generator=gen) < prob
    if good_idx is not None:
        sel &= torch.isin(yb, torch.tensor(good_idx))
    return torch.nonzero(sel).flatten().tolist(), lambda: float(torch.rand((), generator=gen))


def pixel_grid(h, w):
    """Row and column coordinates of an h x w image, as float tensors."""
    return torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")


CHIP_FILLS = ("texture", "bite", "bright")


def edge_shade(xb, eb, gen, prob):
    """Shaded edges, a label-keeping augmentation: each image of the batch,
    of any class, gets with probability prob one side darkened in a band
    as the magnetic tiles' curved ends are (the good parts that synthetic
    chips make suspect have them): 1-8 % of the other side deep at the
    side's middle, bowed by -5..+5 % towards its ends (a negative bow
    can let the band run out before them), darkened x0.2..0.65 with a
    1-3 px soft inner edge. An image whose defect mask reaches into the
    band is left as it was, so the band never hides a defect under its
    label. xb [B,1,H,W] in [0,1], eb [B,2,H,W] (mask, content) or None:
    xb changed in place."""
    b, h, w = xb.shape[0], xb.shape[-2], xb.shape[-1]
    rows, r = pick_good(b, None, gen, prob, None)
    if not rows:
        return
    yy, xx = pixel_grid(h, w)
    for i in rows:
        side = int(r() * 4)
        ds = h if side < 2 else w
        t = xx / (w - 1) if side < 2 else yy / (h - 1)
        dist = [yy, (h - 1) - yy, xx, (w - 1) - xx][side]
        depth = (ds * (0.01 + 0.07 * r()) + ds * (r() * 0.1 - 0.05) * (2 * t - 1) ** 2).clamp_min(0)
        soft = 1 + 2 * r()
        a = ((depth - dist) / soft + 0.5).clamp(0, 1)
        f = 0.2 + 0.45 * r()
        if eb is not None and bool((eb[i, 0] > 0)[a > 0].any()):
            continue
        xb[i, 0] = xb[i, 0] * (1 - a * (1 - f))


def edge_chips(xb, eb, yb, gen, prob, chip_idx, good_idx, slivers=0.0, fill="texture"):
    """Synthetic chipped edges: each good image of the batch becomes, with
    probability prob (a number, or a tensor of one per row), an image of
    class chip_idx with an elliptic piece missing at a random place on a
    random side (along the edge 8-28 % of
    the side, into the part 3-14 %), filled with another image's texture,
    shifted and brighter or darker (x0.5..1.7), and the piece in its defect
    mask. Applied before the other augmentations, which then treat it as
    any real defect. With slivers > 0, that fraction of the chips are
    slivers instead: a thin piece along a side (30-100 % of it, 1-3.5 %
    deep), as a tile broken along its edge. Lengths along a side are
    fractions of that side, depths of the other. fill "bite" fills the
    piece as bite_fill does instead (see there); "bright" scales the
    texture x1.1..1.7 only, so no chip is a dark bite (the good parts'
    own dark edges are what the dark ones make suspect). xb [B,1,H,W] in
    [0,1], eb [B,2,H,W] (mask, content) or None, yb [B]: changed in
    place."""
    b, h, w = xb.shape[0], xb.shape[-2], xb.shape[-1]
    rows, r = pick_good(b, yb, gen, prob, good_idx)
    if not rows:
        return
    yy, xx = pixel_grid(h, w)
    for i in rows:
        side = int(r() * 4)
        ls, ds = (w, h) if side < 2 else (h, w)  # the side's length, the part's depth from it
        pos = r() * (ls - 1)
        along, into = ls * (0.04 + 0.10 * r()), ds * (0.03 + 0.11 * r())
        if slivers > 0 and r() < slivers:
            along, into = ls * (0.15 + 0.35 * r()), ds * (0.01 + 0.025 * r())
        cy, cx, ry, rx = [(0, pos, into, along), (h - 1, pos, into, along),
                          (pos, 0, along, into), (pos, w - 1, along, into)][side]
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        if fill == "bite":
            m, xb[i, 0] = bite_fill(xb[i, 0], d, r, gen)
        else:
            m = d <= 1
            src = xb[int(r() * b), 0].roll((int(r() * h), int(r() * w)), (0, 1))
            gain = 1.1 + 0.6 * r() if fill == "bright" else 0.5 + 1.2 * r()
            xb[i, 0] = torch.where(m, (src * gain).clamp(0, 1), xb[i, 0])
        if eb is not None:
            eb[i, 0] = torch.where(m, torch.ones(()), eb[i, 0])
        yb[i] = chip_idx


def bite_fill(img, d, r, gen):
    """A chip that looks like the real breaks of the magnetic tiles (their
    masks against a ring just outside: the inside is darker, median x0.74,
    and smoother, its spread x0.75): the piece is d <= 1 with its outline
    made ragged by a smooth random field (about +-30 % of the radius,
    varying over 8 px), filled with the ring's mean level times 0.45..1
    (15 % of them 1..1.4: a brighter facet), plus the part's own grain, turned
    across and shifted, times 0.5..1.2 (a fracture does not have the
    grinding marks' direction), and on half of them a 1-2 px rim x1.15..1.5
    (the fracture edge catching the light). img [H,W] in [0,1], d [H,W]
    the normalised distance from the chip's centre; r draws one uniform
    number, gen the field. Returns the mask and the new image."""
    h, w = img.shape
    field = torch.rand(1, 1, 20, 20, generator=gen) * 2 - 1
    field = F.interpolate(field, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    m = d <= 1 + 0.6 * r() * field
    if not bool(m.any()):
        m = d <= 1
    mf = m.float().view(1, 1, h, w)
    ring = (F.max_pool2d(mf, 9, 1, 4)[0, 0] > 0) & ~m
    level = img[ring].mean() if bool(ring.any()) else img.mean()
    scale = 0.45 + 0.55 * r() if r() < 0.85 else 1.0 + 0.4 * r()
    grain = img - F.avg_pool2d(img.view(1, 1, h, w), 9, 1, 4, count_include_pad=False)[0, 0]
    grain = (grain.t() if h == w else grain.flip(0)).roll((int(r() * h), int(r() * w)), (0, 1))
    inside = level * scale + grain * (0.5 + 0.7 * r())
    if r() < 0.5:
        k = 3 if r() < 0.5 else 5
        rim = m & (-F.max_pool2d(-mf, k, 1, k // 2)[0, 0] < 0.5)
        inside = torch.where(rim, inside * (1.15 + 0.35 * r()), inside)
    return m, torch.where(m, inside.clamp(0, 1), img)


def transplant(xb, eb, yb, gen, prob, good_idx, X, y, M, donors):
    """Defect transplant: each good image of the batch becomes, with
    probability prob, an image of a defect class with a real training defect
    pasted in. The class is drawn uniformly among donors' classes, then a
    training image of it whose mask is not empty; the donor is flipped at
    random (image and mask alike) and its pixels under the mask, dilated by
    2 px and feathered over 4 more, replace the good image's, scaled so the
    ring just outside the defect matches the good image's brightness there.
    The defect keeps its place in the frame (a chipped edge stays at the
    border). xb [B,1,H,W] in [0,1], eb [B,2,H,W] (mask, content) or None,
    yb [B]: changed in place. X uint8 [N,H,W], y [N], M uint8 [N,H,W];
    donors: one list of row indices per defect class."""
    b, h, w = xb.shape[0], xb.shape[-2], xb.shape[-1]
    rows, r = pick_good(b, yb, gen, prob, good_idx)
    for i in rows:
        rows = donors[int(r() * len(donors))]
        d = rows[int(r() * len(rows))]
        src = torch.from_numpy(X[d]).float() / 255
        m = torch.from_numpy(M[d]).float()
        for dim in (0, 1):
            if r() < 0.5:
                src, m = src.flip(dim), m.flip(dim)
        mm = m.view(1, 1, h, w)
        hard = F.max_pool2d(mm, 5, 1, 2)
        alpha = F.avg_pool2d(hard, 9, 1, 4, count_include_pad=False)[0, 0].clamp(0, 1)
        alpha = torch.where(hard[0, 0] > 0, torch.ones(()), alpha)
        ring = (F.max_pool2d(mm, 17, 1, 8)[0, 0] > 0) & (alpha == 0)
        if bool(ring.any()):
            gain = xb[i, 0][ring].mean() / src[ring].mean().clamp_min(1e-3)
        else:
            gain = xb[i, 0].mean() / src.mean().clamp_min(1e-3)
        gain = gain.clamp(0.5, 2.0)
        xb[i, 0] = xb[i, 0] * (1 - alpha) + (src * gain).clamp(0, 1) * alpha
        if eb is not None:
            eb[i, 0] = torch.maximum(eb[i, 0], m)
        yb[i] = int(y[d])


SYNTH_KINDS = ("pit", "crack", "region")


def parse_synth_kinds(spec):
    """"pit=blowhole,crack=crack" -> [("pit", "blowhole"), ("crack", "crack")]; ValueError says what is wrong."""
    out = []
    for part in filter(None, (x.strip() for x in spec.split(","))):
        kind, eq, cls = part.partition("=")
        if not eq or kind not in SYNTH_KINDS or not cls:
            raise ValueError("%r: want KIND=CLASS with KIND one of %s" % (part, ", ".join(SYNTH_KINDS)))
        out.append((kind, cls))
    if not out:
        raise ValueError("no kinds given")
    return out


def synth_defects(xb, eb, yb, gen, prob, kinds, good_idx, border=0.1):
    """Synthetic defects on good images (in the spirit of CutPaste and
    DRAEM: what generalises to unseen defects is "a local structure this
    surface does not have"): each good image of the batch becomes, with
    probability prob, an image of one of kinds ([(kind, class index)],
    drawn uniformly) with its defect mask:
      pit     1-3 small elliptic pits (radius 1-3.5 % of the side), darker
              x0.25..0.7 with a soft rim;
      crack   a thin (1-2 px) meandering dark line, 10-45 % of the side long,
              x0.3..0.7;
      region  a large smooth blob (12-40 % of the image) whose texture is
              another image's, brighter or darker (x0.7..0.9 or x1.15..1.45),
              blended over a soft 3 px border.
    Places are fractions of the height and width, at least border from the
    edges (pits' centres, a crack's start), sizes of the side of the square
    of the same area. xb [B,1,H,W] in [0,1], eb [B,2,H,W] (mask,
    content) or None, yb [B]: changed in place."""
    b, h, w = xb.shape[0], xb.shape[-2], xb.shape[-1]
    s = h if h == w else math.sqrt(h * w)
    rows, r = pick_good(b, yb, gen, prob, good_idx)
    if not rows:
        return
    yy, xx = pixel_grid(h, w)
    span = 1 - 2 * border
    for i in rows:
        kind, cls = kinds[int(r() * len(kinds))]
        img = xb[i, 0]
        if kind == "pit":
            m = torch.zeros(h, w, dtype=torch.bool)
            shade = torch.zeros(h, w)
            for _ in range(1 + int(r() * 3)):
                cy, cx = h * (border + span * r()), w * (border + span * r())
                ry, rx = s * (0.01 + 0.025 * r()), s * (0.01 + 0.025 * r())
                d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
                m |= d <= 1
                shade = torch.maximum(shade, torch.exp(-d * 1.5))
            img = img * (1 - (0.3 + 0.45 * r()) * shade)
        elif kind == "crack":
            n = int(s * (0.1 + 0.35 * r()))
            py, px = h * (border + span * r()), w * (border + span * r())
            ang = r() * 2 * math.pi
            pts = []
            for _ in range(n):
                ang += (r() * 2 - 1) * 0.35
                py = min(max(py + math.sin(ang), 0), h - 1)
                px = min(max(px + math.cos(ang), 0), w - 1)
                pts.append((int(round(py)), int(round(px))))
            m = torch.zeros(1, 1, h, w)
            ii = torch.tensor(pts)
            m[0, 0, ii[:, 0], ii[:, 1]] = 1
            if r() < 0.5:
                m = F.max_pool2d(m, 2, 1, 1)[..., :h, :w]
            soft = F.avg_pool2d(m, 3, 1, 1)[0, 0].clamp(0, 1)
            m = m[0, 0] > 0
            img = img * (1 - (0.3 + 0.4 * r()) * torch.maximum(soft, m.float()))
        else:
            noise = torch.rand(1, 1, 4, 4, generator=gen)
            field = F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False)[0, 0]
            area = 0.12 + 0.28 * r()
            m = field >= torch.quantile(field.flatten(), 1 - area)
            alpha = F.avg_pool2d(m.float().view(1, 1, h, w), 7, 1, 3, count_include_pad=False)[0, 0]
            src = xb[int(r() * b), 0].roll((int(r() * h), int(r() * w)), (0, 1))
            gain = (0.7 + 0.2 * r()) if r() < 0.5 else (1.15 + 0.3 * r())
            src = (src * img.mean() / src.mean().clamp_min(1e-3) * gain).clamp(0, 1)
            img = img * (1 - alpha) + src * alpha
        xb[i, 0] = img.clamp(0, 1)
        if eb is not None:
            eb[i, 0] = torch.where(m, torch.ones(()), eb[i, 0])
        yb[i] = cls


def crop_relabel(xb, eb, yb, gen, prob, smin, good_idx):
    """Random crops of the input's aspect, scaled back to the input size: each
    image of the batch is, with probability prob, cropped to smin..1 of its
    sides at a random place. A defect image whose mask has no pixel left in the
    crop is relabelled good (its first good label): the crop shows no
    defect. A defect image without a mask is left whole (it cannot be
    told). xb [B,1,H,W], eb [B,2,H,W] (mask, content), yb [B]: changed in
    place."""
    b, h, w = xb.shape[0], xb.shape[-2], xb.shape[-1]
    r = lambda: float(torch.rand((), generator=gen))  # noqa: E731
    sel = torch.rand(b, generator=gen) < prob
    good = torch.tensor(good_idx)
    for i in torch.nonzero(sel).flatten().tolist():
        f = smin + (1 - smin) * r()
        ch, cw = max(8, int(round(h * f))), max(8, int(round(w * f)))
        y0, x0 = int(r() * (h - ch + 1)), int(r() * (w - cw + 1))
        defect = not bool(torch.isin(yb[i], good))
        if defect and not bool(eb[i, 0].any()):
            continue
        x = xb[i:i + 1, :, y0:y0 + ch, x0:x0 + cw]
        e = eb[i:i + 1, :, y0:y0 + ch, x0:x0 + cw]
        xb[i] = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)[0]
        eb[i] = (F.interpolate(e, size=(h, w), mode="bilinear", align_corners=False)[0] > 0.5).float()
        if defect and not bool(eb[i, 0].any()):
            yb[i] = good_idx[0]


def arch_description(args, arch):
    """The manifest's words for one segmentation network."""
    heads = ("1x1 segmentation head at S/16 trained on the defect masks, weight %g, defect cells x%g: the cam "
             "output; linear decision layer on global average+max of features and map" % (
                 args.seg_weight, args.seg_pos_weight))
    if arch == "mnv2seg":
        return ("MobileSegNet: MobileNetV2 (alpha 1) to stride 16, 96 channels, gray input (RGB first kernel summed), "
                "%s, first %d layers frozen; %s" % (
                    "trunk from " + os.path.basename(os.path.normpath(args.pretrained)) if args.pretrained
                    else "trunk from scratch", args.freeze, heads))
    return "%s width %d (%s; %s)" % (
        "SegTileNet" if arch == "segnet" else "PlainSegNet", args.width,
        "TileNet backbone" if arch == "segnet" else "backbone of 5 conv3x3+BN+ReLU, 2x2 max pooling after the first 4",
        heads)


def view_weights(y, yv, owner, corner, k, mode):
    """The factor (view_w) train_one multiplies a row's draw weight by,
    for the photos (labels y) followed by their views (labels yv, cut from
    photo owner, corner true for a corner view): a photo's windows along
    its long side together are drawn as often as the photo itself, and so
    are its corners. train_one draws a row at 1/sqrt(its label's count over
    all rows); with mode "label" that stands, so the views a mask misses
    (relabelled good) swell the good class and its whole photos are drawn
    less often; with mode "photo" the factor also turns that rate into the
    photo's own class rate counted over the photos alone, so whole photos
    keep the draws they have without views."""
    group = 2 * owner + corner
    per = np.bincount(group, minlength=2 * len(y)).astype(np.float64)
    w = np.concatenate([np.ones(len(y)), 1 / per[group]])
    if mode == "photo":
        n_all = np.bincount(np.concatenate([y, yv]), minlength=k).astype(np.float64)
        n_photo = np.maximum(np.bincount(y, minlength=k).astype(np.float64), 1)
        w *= np.sqrt(n_all[np.concatenate([y, yv])] / n_photo[np.concatenate([y, y[owner]])])
    return w


def train_one(args, seed, X, y, k, class_w, progress_prefix, M=None, C=None, good_idx=(0,), chip_idx=-1, synth=None,
              arch=None, view_w=None, n_photos=None):
    arch = arch or args.archs[0]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = lsmodel.ARCHS[arch](k, args.width)
    frozen = nn.Sequential()
    if arch == "mnv2seg":
        if args.pretrained:
            net.features.load_keras(lsmodel.read_keras_weights(args.pretrained))
        frozen = net.features.layers[:args.freeze]
        # frozen layers keep their loaded batch-norm statistics, so each
        # batch norm is folded into its conv once (the same function, a
        # sixth less time per step: lsmodel.fold_bn)
        lsmodel.fold_bn(frozen.eval())
        frozen.requires_grad_(False)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    seg = arch in SEG_ARCHS and M is not None
    is_good_cls = torch.zeros(k, dtype=torch.bool)
    is_good_cls[list(good_idx)] = True
    lr = args.pretrained_lr if arch == "mnv2seg" and args.pretrained and args.pretrained_lr else args.lr
    opt = torch.optim.AdamW([q for q in net.parameters() if q.requires_grad], lr=lr, weight_decay=args.weight_decay)
    ema = copy.deepcopy(net) if args.ema > 0 else None
    nstep = 0
    steps_per_epoch = max(1, (args.samples_per_epoch or len(X)) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.15)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    samp_w = (1 / np.sqrt(np.maximum(counts, 1)))[y]
    if view_w is not None:
        samp_w = samp_w * view_w
    samp_w = torch.tensor(samp_w, dtype=torch.double)
    loss_w = torch.tensor(class_w, dtype=torch.float32)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y).long()
    if seg:
        Et = torch.from_numpy(np.stack([M, C], 1))
    donors = []
    if args.transplant > 0:
        for c in range(k):
            if c not in good_idx:
                rows = [i for i in range(len(y)) if y[i] == c and M[i].any()]
                if rows:
                    donors.append(rows)
    # rows from n_photos on are windows: they get their own edge-chip probability
    chip_p = torch.full((len(X),), args.edge_chips, dtype=torch.float32)
    if n_photos is not None:
        chip_p[n_photos:] = args.window_edge_chips
    any_chips = bool((chip_p > 0).any())
    tty = sys.stdout.isatty()
    for ep in range(args.epochs):
        net.train()
        frozen.eval()
        t0 = time.time()
        idx = torch.multinomial(samp_w, steps_per_epoch * args.batch, replacement=True, generator=gen)
        tot, correct, seen = 0.0, 0, 0
        for s in range(steps_per_epoch):
            bi = idx[s * args.batch:(s + 1) * args.batch]
            xb = Xt[bi].unsqueeze(1).float() / 255
            yb = yt[bi]
            eb = Et[bi].float() if seg else None
            if args.edge_shade > 0:
                edge_shade(xb, eb, gen, args.edge_shade)
            if any_chips:
                edge_chips(xb, eb, yb, gen, chip_p[bi], chip_idx, list(good_idx), args.chip_slivers, args.chip_fill)
            if synth:
                synth_defects(xb, eb, yb, gen, args.synth_defects, synth, list(good_idx), args.synth_border)
            if donors:
                transplant(xb, eb, yb, gen, args.transplant, list(good_idx), X, y, M, donors)
            if seg and args.crop_prob > 0:
                crop_relabel(xb, eb, yb, gen, args.crop_prob, args.crop_min, list(good_idx))
            if seg:
                xb, eb = augment(xb, gen, eb, args.geo_prob)
                xb = lsmodel.standardise(xb)
            else:
                xb = lsmodel.standardise(augment(xb, gen, geo_prob=args.geo_prob))
            if args.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            logits, cam = net(xb)
            loss = F.cross_entropy(logits, yb, weight=loss_w if args.balance == "full" else None)
            if seg:
                cells = F.adaptive_max_pool2d(eb[:, :1], cam.shape[2:])[:, 0] > 0.5
                defect = ~is_good_cls[yb]
                tgt = torch.where(cells & defect.view(-1, 1, 1), yb.view(-1, 1, 1), torch.full_like(yb.view(-1, 1, 1), good_idx[0]))
                pw = torch.where(tgt == good_idx[0], torch.ones(()), torch.full((), args.seg_pos_weight))
                sl = F.cross_entropy(cam, tgt, reduction="none")
                loss = loss + args.seg_weight * (sl * pw).sum() / pw.sum()
            if args.defect_weight > 0:
                defect = ~is_good_cls[yb]
                if defect.any():
                    pg = torch.softmax(logits, 1)[:, is_good_cls].sum(1)
                    loss = loss + args.defect_weight * (-torch.log1p(-pg[defect].clamp(max=1 - 1e-6))).sum() / len(yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                nstep += 1
                d = min(args.ema, (1 + nstep) / (10 + nstep))
                with torch.no_grad():
                    for pe, pn in zip(ema.state_dict().values(), net.state_dict().values()):
                        if pe.dtype.is_floating_point:
                            pe.mul_(d).add_(pn, alpha=1 - d)
                        else:
                            pe.copy_(pn)
            tot += float(loss) * len(bi)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(bi)
            if tty and not args.quiet:
                print("\r%s epoch %d/%d  step %d/%d  loss %.4f" % (progress_prefix, ep + 1, args.epochs, s + 1,
                                                                 steps_per_epoch, tot / seen), end="", flush=True)
        if tty and not args.quiet:
            print("\r", end="")
        if not args.quiet:
            log("%s epoch %d/%d  loss %.4f  train acc %.3f  lr %.2e  %.1fs" % (
                progress_prefix, ep + 1, args.epochs, tot / seen, correct / seen, sched.get_last_lr()[0],
                time.time() - t0))
    if ema is not None:
        net = ema
    return net.to(memory_format=torch.contiguous_format).eval()


def predict(serving, X):
    serving.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(X), 32):
            xb = torch.from_numpy(X[i:i + 32]).unsqueeze(1).float() / 255
            outs.append(serving(xb)[0])
    return torch.cat(outs) if outs else torch.zeros(0)


def worst_view(whole, wins, owner, good_idx):
    """The logits each photo is decided on when windows are scored (the Go
    engine's rule, inference.Engine.Run): of its whole view and its windows
    (wins[j] cut from photo owner[j]), the one with the lowest P(good)."""
    out = whole.clone()
    if len(wins) == 0:
        return out
    pg = lambda lo: torch.softmax(lo.float(), 1)[:, good_idx].sum(1)  # noqa: E731
    best = pg(whole)
    for j, (g, i) in enumerate(zip(pg(wins).tolist(), owner.tolist())):
        if g < best[i]:
            best[i] = g
            out[i] = wins[j]
    return out


def evaluate(labels, good_idx, logits, y, pass_t=None, reject_t=None, args=None):
    prob = torch.softmax(logits.float(), 1).numpy().astype(np.float64)
    good = prob[:, good_idx].sum(1)
    is_good = np.isin(y, good_idx)
    if pass_t is None:
        pass_t, reject_t = calib.calibrate(good, is_good, args.target_escape, args.target_false_reject)
    m = calib.classification(labels, y, prob.argmax(1))
    r = calib.rates(good, is_good, pass_t, reject_t)
    m.update({k: r[k] for k in ("automation_rate", "escape_rate", "false_reject_rate")})
    m["auroc"] = calib.auroc(1 - good, ~is_good)
    return m, r, pass_t, reject_t, prob


def write_package(d, args, labels, good, precision, onnx_path, metrics, rates_, pass_t, reject_t, nval,
                  reference, training, conf_dist, calib_split="val"):
    os.makedirs(d, exist_ok=True)
    dst = os.path.join(d, "model.onnx")
    if os.path.abspath(onnx_path) != os.path.abspath(dst):
        shutil.move(onnx_path, dst)
    ref = dict(reference)
    ref["confidence"] = conf_dist
    nnets = args.folds or args.ensemble
    desc = args.description or ("LineSight tile classifier (%s, %dx%d gray%s, per-image standardisation in the graph%s%s%s)"
                                 % (precision, args.size_w, args.size_h, "" if args.resize == "stretch" else " " + args.resize,
                                    ", mask-supervised segmentation head" if args.seg else "",
                                    ", 4-flip TTA" if args.tta else "",
                                    ", ensemble of %d" % nnets if nnets > 1 else ""))
    m = {
        "format": 1,
        "name": args.name,
        "version": args.version + ("" if precision == "fp32" else "-int8"),
        "task": "classify",
        "description": desc,
        "created": os.environ.get("LINESIGHT_CREATED") or datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "model": {"file": "model.onnx", "sha256": lsdata.sha256_file(dst), "precision": precision,
                  "opset": lsmodel.OPSET},
        "input": {"name": "input", "shape": [-1, 1, args.size_h, args.size_w], "layout": "nchw", "channels": "gray",
                  "resize": args.resize, "interpolation": "linear", "scale": 1 / 255.0},
        "outputs": [{"name": "logits", "role": "logits"}, {"name": "cam", "role": "heatmap"}],
        "labels": labels,
        "good_labels": good,
        "thresholds": {
            "pass": pass_t, "reject": reject_t,
            "calibration": {"split": calib_split, "images": nval, "target_escape_rate": args.target_escape,
                            "target_false_reject_rate": args.target_false_reject,
                            "automation_rate": rates_["automation_rate"], "escape_rate": rates_["escape_rate"],
                            "false_reject_rate": rates_["false_reject_rate"]},
        },
        "reference": ref,
        "training": training,
        "metrics": dict(metrics, split=calib_split, images=nval),
    }
    if args.resize == "letterbox":
        m["input"]["pad_value"] = args.pad
    if args.orient != "none":
        m["input"]["orient"] = args.orient
    if args.windows or args.corners:
        m["input"]["windows"] = {"overlap": args.windows, "min_aspect": args.window_min_aspect if args.windows else 0}
        if args.corners:
            m["input"]["windows"]["corners"] = args.corners
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    return m


def main(argv=None):
    args = parse_args(argv)
    if args.malloc == "keep":
        keep_freed_memory()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t_start = time.time()

    # 1. the dataset, checked before anything else
    try:
        classes, files = lsdata.scan(args.data)
        good = args.good or ["free"]
        for g in good:
            if g not in classes:
                raise lsdata.DatasetError("good label %r is not a class folder of %s (classes: %s)"
                                          % (g, args.data, ", ".join(classes)))
        if len(good) >= len(classes):
            raise lsdata.DatasetError("every class is a good label; a classifier needs at least one defect class")
        parts = split(files, classes, args.holdout, args.val_frac, args.test_frac, args.seed, args.max_per_class,
                      args.group_exposures)
        used = parts["train"] + parts["val"] + parts["test"]
        log("dataset %s: %d images in %d classes (%s); split %s" % (
            args.data, len(files), len(classes), ", ".join("%s %d" % (c, sum(1 for _, x in files if x == c))
                                                           for c in classes),
            ", ".join("%s %d" % (k, len(v)) for k, v in parts.items())))
        everything = sorted(set(used) | {f for k, v in parts.items() if k not in ("train", "val", "test") for f in v})
        seg = args.seg
        loaded = lsdata.load(args.data, everything, args.size,
                             progress=None if args.quiet else lambda i, n: log("  read %d/%d" % (i, n)),
                             mode=args.resize, pad=args.pad, masks=seg, orient=args.orient)
        imgs, stats = loaded[0], loaded[1]
        masks, contents = (loaded[2], loaded[3]) if seg else (None, None)
    except lsdata.DatasetError as e:
        print("train: %s" % e, file=sys.stderr)
        return 2
    index = {f: i for i, f in enumerate(everything)}
    labels = classes
    lab = {c: i for i, c in enumerate(labels)}
    good_idx = [lab[g] for g in good]
    chip_idx = -1
    if args.edge_chips > 0 or args.window_edge_chips > 0:
        if args.edge_chip_class not in lab or args.edge_chip_class in good:
            print("train: --edge-chip-class %r is not a defect class of %s (classes: %s)"
                  % (args.edge_chip_class, args.data, ", ".join(labels)), file=sys.stderr)
            return 2
        chip_idx = lab[args.edge_chip_class]
    synth = None
    if args.synth_defects > 0:
        try:
            kinds = parse_synth_kinds(args.synth_kinds)
            bad = [c for _, c in kinds if c not in lab or c in good]
            if bad:
                raise ValueError("%s is not a defect class of %s (classes: %s)" % (bad[0], args.data, ", ".join(labels)))
        except ValueError as e:
            print("train: --synth-kinds: %s" % e, file=sys.stderr)
            return 2
        synth = [(kd, lab[c]) for kd, c in kinds]

    def arrays(name):
        fs = parts[name]
        return imgs[[index[f] for f in fs]] if fs else np.zeros((0, args.size_h, args.size_w), np.uint8), \
            np.array([lab[c] for _, c in fs], np.int64)

    if args.folds:
        # k-fold over train+val: the test and hold-out splits stay as they are
        parts["train"] = sorted(parts["train"] + parts["val"])
        parts["val"] = []
    Xtr, ytr = arrays("train")
    Xva, yva = arrays("val")
    sel = [index[f] for f in parts["train"]]
    Mtr = masks[sel] if masks is not None else None
    if args.transplant > 0 and not any(Mtr[i].any() for i in range(len(ytr)) if ytr[i] not in good_idx):
        print("train: --transplant: no defect image of the training split has a mask (NAME_mask.png beside "
              "NAME.jpg) to transplant; add the masks or leave --transplant out", file=sys.stderr)
        return 2
    Ctr = contents[sel] if contents is not None else None
    calib_split = "val"
    if args.folds:
        frng = random.Random(args.seed)
        fold = np.zeros(len(ytr), np.int64)
        for c in range(len(labels)):
            ii = [i for i in range(len(ytr)) if ytr[i] == c]
            frng.shuffle(ii)
            for j, i in enumerate(ii):
                fold[i] = j % args.folds
        calib_split = "out-of-fold (%d folds of train+val)" % args.folds
    elif len(Xva) == 0:
        log("warning: no validation split (--val-frac 0): thresholds are calibrated on the training images")
        Xva, yva = Xtr, ytr
    counts = np.bincount(ytr, minlength=len(labels)).astype(np.float64)
    class_w = 1 / np.sqrt(np.maximum(counts, 1))
    class_w = class_w / (class_w * counts).sum() * counts.sum()
    view_w, wva, n_photos = None, None, len(ytr)
    if args.windows or args.corners:
        vfiles = parts["val"] or parts["train"]
        min_aspect = args.window_min_aspect if args.windows else 0
        wva = lsdata.load_windows(args.data, vfiles, args.size, args.windows, min_aspect, masks=False,
                                  corners=args.corners)
        Xw, Mw, Hw, Ow, Cw = lsdata.load_windows(args.data, parts["train"], args.size, args.windows, min_aspect,
                                                 corners=args.corners)
        yw = ytr[Ow].copy()
        defect = ~np.isin(yw, good_idx)
        keep = ~defect | Hw  # a defect photo without a mask: which window shows it cannot be told
        yw[defect & (Mw.reshape(len(Mw), -1).max(1) == 0)] = good_idx[0]
        Xw, Mw, yw, Ow, Cw = Xw[keep], Mw[keep], yw[keep], Ow[keep], Cw[keep]
        view_w = view_weights(ytr, yw, Ow, Cw, len(labels), args.view_draws) if len(Ow) else None
        log("windows: %d of the %d training photos give %d windows and %d corners (%d showing a defect), "
            "the val split %d" % (len(np.unique(Ow[~Cw])), len(ytr), int((~Cw).sum()), int(Cw.sum()),
                                  int((~np.isin(yw, good_idx)).sum()), len(wva[0])))
        Xtr, ytr = np.concatenate([Xtr, Xw]), np.concatenate([ytr, yw])
        Mtr = np.concatenate([Mtr, Mw])
        Ctr = np.concatenate([Ctr, np.ones_like(Mw)])

    # 2. training
    log("training %d network(s) on %d images at %dx%d, width %d, %d epochs, %d threads" % (
        args.folds or args.ensemble, len(Xtr), args.size_w, args.size_h, args.width, args.epochs, args.threads))
    nets = []
    if args.folds:
        oof = None
        for e in range(args.folds):
            tr = fold != e
            net = train_one(args, args.seed + e, Xtr[tr], ytr[tr], len(labels), class_w,
                            "[fold %d/%d]" % (e + 1, args.folds), None if Mtr is None else Mtr[tr],
                            None if Ctr is None else Ctr[tr], good_idx, chip_idx, synth, args.archs[e % len(args.archs)])
            nets.append(net)
            lo = predict(lsmodel.Serving([net], args.tta).eval(), Xtr[~tr])
            if oof is None:
                oof = torch.zeros(len(ytr), lo.shape[1])
            oof[torch.from_numpy(~tr)] = lo
        Xva, yva = Xtr, ytr
    else:
        for e in range(args.ensemble):
            nets.append(train_one(args, args.seed + e, Xtr, ytr, len(labels), class_w,
                                  "[net %d/%d]" % (e + 1, args.ensemble), Mtr, Ctr, good_idx, chip_idx, synth,
                                  args.archs[e % len(args.archs)], view_w, n_photos))
    train_s = time.time() - t_start
    serving = lsmodel.Serving(nets, args.tta).eval()
    if args.save_nets:
        torch.save({"args": vars(args), "labels": labels, "nets": [n.state_dict() for n in nets]}, args.save_nets)

    # 3. calibration and validation metrics (fp32)
    lv = oof if args.folds else predict(serving, Xva)
    if wva is not None:
        lv = worst_view(lv, predict(serving, wva[0]), wva[3], good_idx)
    bias = None
    if args.prior_fit:
        pg = torch.softmax(lv.float(), 1).numpy().astype(np.float64)[:, good_idx].sum(1)
        b = calib.fit_good_bias(pg, np.isin(yva, good_idx))
        bias = np.zeros(len(labels), np.float32)
        bias[good_idx] = b
        lv = lv + torch.from_numpy(bias)
        serving = lsmodel.Serving(nets, args.tta, bias).eval()
        log("prior fit on %s: log-odds of good %+.4f" % (calib_split, b))
    metrics, rates_, pass_t, reject_t, prob = evaluate(labels, good_idx, lv, yva, args=args)
    log("%s (fp32, %d images): accuracy %.4f  macro F1 %.4f  AUROC %.4f" % (
        calib_split, len(yva), metrics["accuracy"], metrics["macro_f1"], metrics["auroc"]))
    log("thresholds: pass %.6f  reject %.6f -> automation %.4f  escape %.4f  false reject %.4f" % (
        pass_t, reject_t, rates_["automation_rate"], rates_["escape_rate"], rates_["false_reject_rate"]))

    if args.save_val_scores:
        vfiles = parts["train"] if args.folds else (parts["val"] or parts["train"])
        with open(args.save_val_scores, "w") as f:
            json.dump({"labels": labels, "good": good, "split": calib_split,
                       "files": [r for r, _ in vfiles], "classes": [c for _, c in vfiles],
                       "probs": prob.round(7).tolist()}, f)
            f.write("\n")
    # 4. package
    out = args.out
    os.makedirs(out, exist_ok=True)
    train_rel = [r for r, _ in parts["train"]]
    train_stats = [stats[index[f]] for f in parts["train"]]
    mix = {c: float(counts[i] / counts.sum()) for i, c in enumerate(labels)}
    reference = lsdata.reference(train_stats, mix)
    conf_edges = list(np.linspace(0, 1, 21))
    training = {
        "dataset": args.dataset_name or os.path.abspath(args.data),
        "fingerprint": lsdata.fingerprint(args.data, train_rel),
        "images": len(train_rel),
        "classes": {c: int(counts[i]) for i, c in enumerate(labels)},
        "split": {k: len(v) for k, v in parts.items()},
        "seed": args.seed,
        "epochs": args.epochs,
        "augment": ["flip-h", "flip-v", "rotate+-4deg, zoom-in 1.04..1.12, shift+-3%% (%g%% of images)" % (100 * args.geo_prob), "exposure-gain x0.56..1.8 (clipped)",
                    "gamma x0.77..1.3", "contrast x0.8..1.2", "gaussian-noise sigma<=0.01"],
        "extra": {
            "script": "scripts/train/train.py v" + SCRIPT_VERSION,
            "architecture": "TileNet width %d (7 conv3x3+BN+ReLU, stride-2 downsampling, 1x1 CAM head, GAP)"
                            % args.width,
            "ensemble": str(args.ensemble), "tta": "4 flips" if args.tta else "none",
            "standardisation": "per image, in the graph: (x-mean)/sqrt(var+1e-4)",
            "class_balance": {"sqrt": "sampling weights 1/sqrt(n)", "full": "sampling weights 1/sqrt(n) and loss weights 1/sqrt(n)"}[args.balance],
            "holdout": ",".join(args.holdout) or "none",
            "fingerprint_covers": "train split",
            "reference_sharpness": "variance of cv2.Laplacian(gray/255, ksize=1) on the model input (resized, before padding)",
            "torch": torch.__version__, "threads": str(args.threads), "cpu": this_cpu(),
            "lr": str(args.lr), "batch": str(args.batch), "size": "%dx%d" % args.size if args.size_w != args.size_h else str(args.size),
            "train_seconds": "%.0f" % train_s,
        },
    }
    # options beyond the original recipe are recorded only when used, so the
    # built-in model's manifest stays what `make model` has always written
    ex = training["extra"]
    if args.seg:
        ex["architecture"] = " + ".join(arch_description(args, a) for a in args.archs)
    if args.pretrained_lr:
        ex["pretrained_lr"] = str(args.pretrained_lr)
    if args.resize != "stretch":
        ex["resize"] = "%s, pad %d" % (args.resize, args.pad)
    if args.orient != "none":
        ex["orient"] = "%s: images taller than wide turned a quarter clockwise after the resize" % args.orient
    if args.edge_chips:
        ex["edge_chips"] = ("%g of good training images get a synthetic chipped edge (class %s, in the mask): an "
                            "elliptic piece at a random border, another image's texture x0.5..1.7"
                            % (args.edge_chips, args.edge_chip_class))
    if (args.windows or args.corners) and args.window_edge_chips != args.edge_chips:
        ex["window_edge_chips"] = ("%g of good training windows get a synthetic chipped edge (the whole photos: %g)"
                                   % (args.window_edge_chips, args.edge_chips))
    if args.group_exposures:
        ex["split_groups"] = ("a part's photos at several exposures kept in one split (names expE_num_N, N within %d, "
                              "E increasing)" % args.group_exposures)
    if args.corners:
        ex["corners"] = ("every photo's four corners, squares of %g of its short side, scored beside the whole view; "
                         "the lowest P(good) decides. Trained on the training photos' corners too (relabelled good "
                         "where the mask misses them), drawn together as often as their photo" % args.corners)
    if args.windows:
        ex["windows"] = ("square windows of the short side along an elongated photo's long side (overlap >= %g, "
                         "photos at least %g:1), scored beside the whole view; the lowest P(good) decides. Trained "
                         "on the training photos' windows too (relabelled good where the mask misses them), drawn "
                         "together as often as their photo" % (args.windows, args.window_min_aspect))
    if args.view_draws != "label":
        ex["view_draws"] = ("a photo's windows, and its corners, drawn together as often as the photo itself, at its "
                            "class's rate (whole photos keep their draws)")
    if args.crop_prob:
        ex["crop"] = ("%g of training images cropped to %g..1 of the side and scaled back; a defect image whose "
                      "defect is outside the crop relabelled good" % (args.crop_prob, args.crop_min))
    if args.synth_defects:
        ex["synth_defects"] = ("%g of good training images get a synthetic defect (%s; pits, a thin dark line, a "
                               "patch of changed texture), with its mask; pits and crack starts at least %g of the side from the border"
                               % (args.synth_defects, args.synth_kinds, args.synth_border))
    if args.edge_shade:
        ex["edge_shade"] = ("%g of training images (any class, label kept) get one side darkened in a bowed band "
                            "(1-8 %% deep, x0.2..0.65)" % args.edge_shade)
    if args.chip_fill != "texture" and (args.edge_chips or args.window_edge_chips):
        ex["chip_fill"] = "the synthetic chips are filled: " + {
            "bite": "bite (darker, fainter cross-grain, ragged, half with a bright rim)",
            "bright": "bright (another image's texture x1.1..1.7)"}[args.chip_fill]
    if args.chip_slivers:
        ex["chip_slivers"] = "%g of the synthetic chips are slivers along a side (30-100 %%, 1-3.5 %% deep)" % args.chip_slivers
    if args.ema:
        ex["ema"] = "served weights: exponential moving average, decay %g per step (BN statistics too)" % args.ema
    if args.transplant:
        ex["transplant"] = ("%g of good training images get a real training defect pasted in at its place (class "
                            "uniform, then image; flipped; mask dilated 2 px, feathered 4 px; brightness matched on "
                            "the ring around it), with its class and mask" % args.transplant)
    if bias is not None:
        ex["prior_fit"] = ("good classes' logits %+.4f in the graph, fitted on %s (maximum likelihood, Platt's "
                           "targets) before the thresholds" % (float(bias[good_idx[0]]), calib_split))
    if args.channels_last:
        ex["memory_format"] = "channels-last (training)"
    if args.defect_weight:
        ex["defect_weight"] = "%g x -log(1-P(good)) on defective images" % args.defect_weight
    if args.folds:
        ex["ensemble"] = "%d fold networks" % args.folds
        ex["folds"] = ("%d stratified folds of train+val (seed %d); network k trained without fold k with seed "
                       "seed+k; thresholds calibrated on the out-of-fold predictions, each image scored by the "
                       "one network that did not train on it" % (args.folds, args.seed))
        training["epochs"] = args.epochs
    conf = lsdata.distribution(prob.max(1), conf_edges)
    tmp = os.path.join(out, ".model-fp32.onnx")
    fused = lsmodel.Serving([lsmodel.fuse(n) for n in nets], args.tta, bias).eval()
    lsmodel.export_fp32(fused, args.size, tmp)
    write_package(out, args, labels, good, "fp32", tmp, metrics, rates_, pass_t, reject_t, len(yva),
                  reference, training, conf, calib_split)
    log("wrote %s (fp32, %d bytes)" % (os.path.join(out, "model.onnx"), os.path.getsize(os.path.join(out, "model.onnx"))))

    if not args.no_int8:
        g = torch.Generator().manual_seed(args.seed)
        ci = torch.randperm(len(Xtr), generator=g)[:args.calib_images].numpy()
        cal = torch.from_numpy(Xtr[np.sort(ci)]).unsqueeze(1).float() / 255
        ranges = lsmodel.calibrate_ranges(fused, cal)
        d8 = os.path.join(out, "int8")
        os.makedirs(d8, exist_ok=True)
        tmp8 = os.path.join(d8, ".model-int8.onnx")
        lsmodel.quantize_qdq(os.path.join(out, "model.onnx"), ranges, tmp8)
        xva = torch.from_numpy(Xva).unsqueeze(1).float() / 255
        if args.folds:
            # each fold's int8 network on its own out-of-fold images
            lq = torch.zeros(len(yva), len(labels))
            for e in range(args.folds):
                pre = "nets.%d." % e
                r1 = {"nets.0." + k[len(pre):]: v for k, v in ranges.items() if k.startswith(pre)}
                f1 = lsmodel.Serving([lsmodel.fuse(nets[e])], args.tta, bias).eval()
                sel_e = torch.from_numpy(fold == e)
                lq[sel_e] = lsmodel.fake_quant_forward(f1, r1, xva[sel_e])[0]
        else:
            lq, _ = lsmodel.fake_quant_forward(fused, ranges, xva)
            if wva is not None and len(wva[0]):
                xw = torch.from_numpy(wva[0]).unsqueeze(1).float() / 255
                lq = worst_view(lq, lsmodel.fake_quant_forward(fused, ranges, xw)[0], wva[3], good_idx)
        m8, r8, p8, j8, prob8 = evaluate(labels, good_idx, lq, yva, args=args)
        log("%s (int8 simulated): accuracy %.4f  thresholds pass %.6f reject %.6f -> automation %.4f  escape %.4f"
            "  false reject %.4f" % (calib_split, m8["accuracy"], p8, j8, r8["automation_rate"], r8["escape_rate"],
                                      r8["false_reject_rate"]))
        t8 = dict(training, extra=dict(training["extra"], int8="static QDQ: per-channel int8 weights, uint8 "
                                                                "activations calibrated (min/max) on %d training "
                                                                "images; int32 biases" % len(cal)))
        write_package(d8, args, labels, good, "int8", tmp8, m8, r8, p8, j8, len(yva), reference, t8,
                      lsdata.distribution(prob8.max(1), conf_edges), calib_split)
        log("wrote %s (int8, %d bytes)" % (os.path.join(d8, "model.onnx"), os.path.getsize(os.path.join(d8, "model.onnx"))))

    # 5. the split, and folders of the held-out files for `linesight model eval`
    with open(os.path.join(out, "split.json"), "w") as f:
        json.dump({"dataset": os.path.abspath(args.data), "seed": args.seed, "holdout": args.holdout,
                   "val_frac": args.val_frac, "test_frac": args.test_frac, "group_exposures": args.group_exposures,
                   "splits": {k: [r for r, _ in v] for k, v in parts.items()}}, f, indent=1)
        f.write("\n")
    if not args.no_links:
        root = os.path.abspath(args.data)
        for k, v in parts.items():
            if not v:
                continue
            # the training split too: a model unsure of the parts it trained
            # on is underfit, not failing to generalise (README, session 13)
            base = os.path.join(out, "trained") if k == "train" else os.path.join(out, "heldout", k)
            shutil.rmtree(base, ignore_errors=True)
            for r, _ in v:
                os.makedirs(os.path.join(base, os.path.dirname(r)), exist_ok=True)
                os.symlink(os.path.join(root, r), os.path.join(base, r))
    log("done in %.0fs (training %.0fs)" % (time.time() - t_start, train_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
