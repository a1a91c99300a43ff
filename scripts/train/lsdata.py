"""Folder datasets, the serving preprocessing, and reference input statistics.

A dataset is ROOT/CLASS/NAME.{jpg,jpeg,png,bmp}; files ending in _mask.png
(or _mask.*) are defect masks, not images. This is the layout of the real
magnetic-tile data, of `linesight synth` output and of the fleet collector's
datasets.

The preprocessing here is the one the Go engine runs (inference/preprocess.go
with the manifest's input spec): decode as 8-bit BGR (cv2.IMREAD_COLOR, as
gocv.IMRead with IMReadColor), cv2.cvtColor BGR2GRAY, cv2.resize with
INTER_LINEAR, either to W x H (stretch) or, keeping the aspect ratio, to fit
inside W x H and padded with pad_value (letterbox, the placement of
inference.Preprocess.Geometry), then x * scale. With orient "landscape" an
image taller than wide is resized to the input's H x W and then turned a
quarter clockwise (cv2.rotate ROTATE_90_CLOCKWISE, gocv.Rotate90Clockwise),
so that its long side lies along the input's width. A size is an int (a
square input) or a (W, H) pair. Per-image standardisation is
inside the ONNX graph, so Go and Python cannot disagree about it. windows()
cuts an elongated photo's square windows, and any photo's corners, as
inference.Windows.Of does (the manifest's input.windows).
"""
import hashlib
import math
import os

import cv2
import numpy as np

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


class DatasetError(Exception):
    """A dataset that cannot be trained on or evaluated; the message says why."""


def is_mask(name):
    stem = os.path.splitext(name)[0]
    return stem.endswith("_mask")


def scan(root):
    """Return (classes, files) with files a sorted list of (relpath, class).

    Raises DatasetError for a missing root, no class folders, an empty class
    folder or a single class.
    """
    if not os.path.isdir(root):
        raise DatasetError("dataset %s: not a folder" % root)
    classes = sorted(d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if not classes:
        raise DatasetError("dataset %s: no class folders (want ROOT/CLASS/NAME.jpg)" % root)
    files, empty = [], []
    for c in classes:
        names = sorted(n for n in os.listdir(os.path.join(root, c))
                       if n.lower().endswith(IMAGE_EXT) and not is_mask(n) and not n.startswith("."))
        if not names:
            empty.append(c)
        files += [(c + "/" + n, c) for n in names]
    if empty:
        raise DatasetError("dataset %s: class folder(s) with no images: %s" % (root, ", ".join(empty)))
    if len(classes) < 2:
        raise DatasetError("dataset %s: only one class (%s); a classifier needs at least two" % (root, classes[0]))
    return classes, files


def read_gray(path):
    """Decode like gocv.IMRead(path, IMReadColor) then BGR2GRAY; None if unreadable."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def _round(x):
    """Go's math.Round (half away from zero), not Python's banker's round."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


ORIENTS = ("none", "landscape")


def wh(size):
    """(W, H) of a size: an int (square) or a (W, H) pair."""
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def geometry(w, h, size, mode, orient="none"):
    """(resized_w, resized_h, off_x, off_y, rotated) of a w x h image in a W x H
    input: inference.Preprocess.Geometry for stretch and letterbox. rotated:
    orient is landscape and the image taller than wide, so it is turned a
    quarter clockwise; resized_w x resized_h is its size as it lies in the
    input, after the turn."""
    if orient not in ORIENTS:
        raise ValueError("orient %r (want %s)" % (orient, " or ".join(ORIENTS)))
    W, H = wh(size)
    rot = orient == "landscape" and h > w
    if rot:
        w, h = h, w
    if mode == "stretch":
        return W, H, 0, 0, rot
    if mode != "letterbox":
        raise ValueError("resize mode %r (want stretch or letterbox)" % mode)
    r = min(W / float(w), H / float(h))
    rw, rh = max(1, _round(w * r)), max(1, _round(h * r))
    return rw, rh, _round((W - rw) / 2.0 - 0.1), _round((H - rh) / 2.0 - 0.1), rot


def input_content(gray, size, mode="stretch", interpolation=cv2.INTER_LINEAR, orient="none"):
    """The gray image resized (and turned) as the model input holds it,
    without the letterbox padding: what the reference statistics are
    measured on."""
    h, w = gray.shape
    rw, rh, _, _, rot = geometry(w, h, size, mode, orient)
    tw, th = (rh, rw) if rot else (rw, rh)
    img = gray if (w, h) == (tw, th) else cv2.resize(gray, (tw, th), interpolation=interpolation)
    return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE) if rot else img


def resize(gray, size, mode="stretch", pad=0, interpolation=cv2.INTER_LINEAR, orient="none"):
    """To W x H as the Go Preprocessor does: stretch, or letterbox (aspect
    kept, centred, the rest pad), INTER_LINEAR; with orient landscape a
    portrait image is resized to H x W and then turned."""
    img = input_content(gray, size, mode, interpolation, orient)
    if mode == "stretch":
        return img
    h, w = gray.shape
    rw, rh, ox, oy, _ = geometry(w, h, size, mode, orient)
    W, H = wh(size)
    out = np.full((H, W), pad, np.uint8)
    out[oy:oy + rh, ox:ox + rw] = img
    return out


def content(shape, size, mode, orient="none"):
    """uint8 [H, W]: 1 where the image lies in the model input, 0 on letterbox padding."""
    h, w = shape
    rw, rh, ox, oy, _ = geometry(w, h, size, mode, orient)
    W, H = wh(size)
    out = np.zeros((H, W), np.uint8)
    out[oy:oy + rh, ox:ox + rw] = 1
    return out


def windows(w, h, overlap, min_aspect, corners=0.0):
    """inference.Windows: the square windows of a w x h image, each of its
    short side, along its long side, overlapping by at least overlap (a
    fraction of the side), the first and last flush with the ends; none
    when the long side is under min_aspect times the short one (the whole
    view is enough) or min_aspect is 0. With corners > 0, then its four
    corners (top left, top right, bottom left, bottom right), squares of
    corners times the short side. Each is (x, y, side) in image pixels."""
    s, n_long = min(w, h), max(w, h)
    if s < 1:
        return []
    out = []
    if min_aspect >= 1 and n_long != s and n_long >= min_aspect * s:
        n = int(math.ceil((n_long - s) / (s * (1 - overlap)) - 1e-9)) + 1
        for k in range(n):
            o = _round(k * (n_long - s) / float(n - 1))
            out.append((o, 0, s) if w >= h else (0, o, s))
    if corners > 0:
        c = max(1, _round(corners * s))
        out += [(0, 0, c), (w - c, 0, c), (0, h - c, c), (w - c, h - c, c)]
    return out


def load_windows(root, files, size, overlap, min_aspect, masks=True, corners=0.0):
    """The windows of every file (windows()), each resized like a whole
    image (stretch: a square window in a square input keeps its aspect);
    returns (images uint8 [K, H, W], masks uint8 [K, H, W] in {0, 1} (all 0
    where a file has no mask), has_mask bool [K], owner int [K]: the index
    in files of the image a window was cut from, corner bool [K]: a corner
    view, not a window along the long side)."""
    W, H = wh(size)
    imgs, mks, has, owner, corner = [], [], [], [], []
    for i, (rel, _) in enumerate(files):
        g = read_gray(os.path.join(root, rel))
        if g is None or g.size == 0:
            raise DatasetError("cannot decode %s" % os.path.join(root, rel))
        m = None
        if masks:
            mp = mask_path(os.path.join(root, rel))
            m = cv2.imread(mp, cv2.IMREAD_GRAYSCALE) if mp else None
            if m is not None and m.shape != g.shape:
                m = None
        views = windows(g.shape[1], g.shape[0], overlap, min_aspect, corners)
        n_long = len(views) - (4 if corners > 0 and views else 0)
        for k, (x, y, s) in enumerate(views):
            imgs.append(resize(g[y:y + s, x:x + s], size))
            if m is not None:
                mks.append(resize((m[y:y + s, x:x + s] > 127).astype(np.uint8) * 255, size) > 127)
            else:
                mks.append(np.zeros((H, W), bool))
            has.append(m is not None)
            owner.append(i)
            corner.append(k >= n_long)
    if not imgs:
        z = np.zeros((0, H, W), np.uint8)
        return z, z.copy(), np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0, bool)
    return (np.stack(imgs), np.stack(mks).astype(np.uint8), np.array(has), np.array(owner, np.int64),
            np.array(corner))


def mask_path(path):
    stem, _ = os.path.splitext(path)
    for ext in (".png", ".jpg", ".bmp"):
        if os.path.exists(stem + "_mask" + ext):
            return stem + "_mask" + ext
    return None


def preprocess(path, size, scale=1 / 255.0, mode="stretch", pad=0, orient="none"):
    """The model input for one file, [1, H, W] float32, without the in-graph standardisation."""
    g = read_gray(path)
    if g is None:
        raise DatasetError("cannot decode %s" % path)
    return (resize(g, size, mode, pad, orient=orient).astype(np.float32) * np.float32(scale))[None]


def load(root, files, size, progress=None, mode="stretch", pad=0, masks=False, orient="none"):
    """Read every file; returns (uint8 array [N, H, W], stats list), and
    with masks=True also (masks uint8 [N, H, W] in {0, 1}: the defect
    mask NAME_mask.* resized (and turned) like the image, all 0 where there
    is none; content uint8 [N, H, W]: 1 on the image, 0 on letterbox
    padding).

    stats holds (brightness, contrast, sharpness) of each image as the model
    sees it (the gray image resized to the model input, before any letterbox
    padding: input_content), the reference statistics the Go engine measures
    on every frame (inference.Reference, measured "input"): mean and
    standard deviation of gray/255, and the variance of the 3x3 Laplacian
    (cv2.Laplacian ksize 1, the 4-neighbour kernel, reflect-101 border) of
    gray/255. Raises DatasetError listing every unreadable file before any
    training starts.
    """
    W, H = wh(size)
    out = np.zeros((len(files), H, W), np.uint8)
    mk = np.zeros((len(files), H, W), np.uint8) if masks else None
    ct = np.zeros((len(files), H, W), np.uint8) if masks else None
    stats, bad = [], []
    for i, (rel, _) in enumerate(files):
        g = read_gray(os.path.join(root, rel))
        if g is None or g.size == 0:
            bad.append(rel)
            continue
        out[i] = resize(g, size, mode, pad, orient=orient)
        stats.append(measure(input_content(g, size, mode, orient=orient)))
        if masks:
            ct[i] = content(g.shape, size, mode, orient)
            mp = mask_path(os.path.join(root, rel))
            m = cv2.imread(mp, cv2.IMREAD_GRAYSCALE) if mp else None
            if m is not None and m.shape == g.shape:
                mk[i] = resize((m > 127).astype(np.uint8) * 255, size, mode, 0, orient=orient) > 127
        if progress and (i + 1) % 200 == 0:
            progress(i + 1, len(files))
    if bad:
        more = "" if len(bad) <= 10 else " and %d more" % (len(bad) - 10)
        raise DatasetError("dataset %s: %d unreadable image(s): %s%s" % (root, len(bad), ", ".join(bad[:10]), more))
    if masks:
        return out, stats, mk, ct
    return out, stats


def measure(gray):
    f = gray.astype(np.float64) / 255.0
    lap = cv2.Laplacian(f, cv2.CV_64F, ksize=1)
    return float(f.mean()), float(f.std()), float(lap.var())


def distribution(xs, edges):
    xs = np.asarray(xs, np.float64)
    hist, _ = np.histogram(np.clip(xs, edges[0], edges[-1]), bins=edges)
    hist = hist / max(1, hist.sum())
    return {
        "mean": float(xs.mean()), "std": float(xs.std()),
        "min": float(xs.min()), "max": float(xs.max()),
        "p01": float(np.percentile(xs, 1)), "p50": float(np.percentile(xs, 50)), "p99": float(np.percentile(xs, 99)),
        "edges": [float(e) for e in edges], "hist": [float(h) for h in hist],
    }


def quantile_edges(xs, bins=10):
    """Edges from 0 through the quantiles to twice the maximum, strictly increasing."""
    xs = np.asarray(xs, np.float64)
    qs = np.percentile(xs, np.linspace(0, 100, bins + 1))[1:-1]
    edges = [0.0]
    for q in list(qs) + [max(float(xs.max()) * 2, 1e-6)]:
        if q > edges[-1] * (1 + 1e-9) + 1e-12:
            edges.append(float(q))
    return edges


def reference(stats, class_mix):
    b, c, s = zip(*stats)
    return {
        "images": len(stats),
        "measured": "input",
        "brightness": distribution(b, list(np.linspace(0, 1, 21))),
        "contrast": distribution(c, list(np.linspace(0, 0.5, 21))),
        "sharpness": distribution(s, quantile_edges(s)),
        "class_mix": class_mix,
    }


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(root, rels):
    """inference.Fingerprint: sha256 of the sorted lines relpath TAB sha256(file) LF."""
    lines = sorted("%s\t%s\n" % (r, sha256_file(os.path.join(root, r))) for r in rels)
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()
