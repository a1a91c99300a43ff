"""The LineSight tile classifier, its serving graph, and ONNX export (fp32 and int8 QDQ).

Network: a plain stack of 3x3 conv + batch-norm + ReLU blocks (stride-2 convs
instead of pooling, so every activation feeds a conv and quantises cleanly),
then a 1x1 conv to one map per class. The class-activation map (CAM) is that
1x1 conv applied at every position of the last features; the logits are its
spatial mean, which is exactly global average pooling followed by a linear
layer, so the map is a true CAM of the logits.

MobileSegNet (--arch mnv2seg) puts the same heads on a MobileNetV2 trunk
(MobileTrunk, Keras layout and padding, so ImageNet-trained Keras weights
load into it: read_keras_weights, MobileTrunk.load_keras).

Serving graph (what model.onnx computes), input "input" [N,1,S,S] = gray/255:
  1. per-image standardisation: (x - mean(x)) / sqrt(var(x) + 1e-4), inside
     the graph so Go and Python cannot disagree about it, and so exposure
     (a gain on the image) cancels out;
  2. optionally test-time augmentation: the four flips go through the
     network as one batch; logits are averaged and the maps flipped back;
  3. optionally an ensemble: several networks, logits and maps averaged.
Outputs "logits" [N,K] and "cam" [N,K,S/16,S/16].
"""
import copy
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper

OPSET = 13
EPS = 1e-4
# int8 QDQ: a bias quantises to at most this many steps of its scale (int32 has 2^31)
BIAS_RANGE = 2.0 ** 30


def cbr(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def strided(w):
    """TileNet's backbone: 7 conv3x3+BN+ReLU, stride-2 downsampling to S/16, 8w channels."""
    return nn.Sequential(
        cbr(1, w, 2),
        cbr(w, 2 * w, 2), cbr(2 * w, 2 * w, 1),
        cbr(2 * w, 4 * w, 2), cbr(4 * w, 4 * w, 1),
        cbr(4 * w, 8 * w, 2), cbr(8 * w, 8 * w, 1),
    )


class TileNet(nn.Module):
    def __init__(self, classes, width=16, dropout=0.2):
        super().__init__()
        w = width
        self.features = strided(w)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Conv2d(8 * w, classes, 1)

    def forward(self, x):
        cam = self.head(self.drop(self.features(x)))
        return cam.mean(dim=(2, 3)), cam


class SegTileNet(nn.Module):
    """TileNet's backbone with a segmentation head and a decision head.

    The head (1x1 conv) gives per-cell class logits at S/16, trained on the
    defect masks (a cell is its image's defect class where the mask touches
    it, the good class elsewhere); it is the "cam" output the inspector
    sees. The image logits come from a linear decision layer on the global
    average and maximum of the last features and of the segmentation map, so
    a small defect at the border counts as much as a large one in the
    middle (global average pooling alone dilutes it)."""

    def __init__(self, classes, width=16, dropout=0.2, plain=False):
        super().__init__()
        w = width
        if plain:
            # full-resolution first conv and 2x2 max pooling: a few-pixel
            # blowhole survives the downsampling (a stride-2 conv samples past it)
            mp = lambda: nn.MaxPool2d(2)  # noqa: E731
            self.features = nn.Sequential(
                cbr(1, w, 1), mp(),
                cbr(w, 2 * w, 1), mp(),
                cbr(2 * w, 4 * w, 1), mp(),
                cbr(4 * w, 8 * w, 1), mp(),
                cbr(8 * w, 8 * w, 1),
            )
        else:
            self.features = strided(w)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Conv2d(8 * w, classes, 1)
        self.fc = nn.Linear(16 * w + 2 * classes, classes)

    def forward(self, x):
        f = self.features(x)
        cam = self.head(self.drop(f))
        z = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3)), cam.mean(dim=(2, 3)), cam.amax(dim=(2, 3))], 1)
        return self.fc(self.drop(z)), cam


class PlainSegNet(SegTileNet):
    """SegTileNet on a plain backbone: conv3x3+BN+ReLU then 2x2 max pooling, four times."""

    def __init__(self, classes, width=16, dropout=0.2):
        super().__init__(classes, width, dropout, plain=True)


# MobileNetV2 (alpha 1) to stride 16: (expansion, channels, stride) of the
# blocks expanded_conv, block_1 .. block_12, Keras names and layout.
MNV2_BLOCKS = [(1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2),
               (6, 64, 1), (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1)]


def cbr6(cin, cout, k, stride, groups=1, relu=True):
    """conv (no bias) + BN (Keras' epsilon 1e-3) [+ ReLU6]; a stride-2 conv pads
    right and bottom only, as Keras' MobileNetV2 does."""
    mods = [nn.ZeroPad2d((0, 1, 0, 1))] if stride == 2 else []
    mods += [nn.Conv2d(cin, cout, k, stride, (k // 2) if stride == 1 else 0, groups=groups, bias=False),
             nn.BatchNorm2d(cout, eps=1e-3)]
    if relu:
        mods.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*mods)


class InvertedResidual(nn.Module):
    def __init__(self, cin, t, cout, stride):
        super().__init__()
        mid = cin * t
        self.expand = cbr6(cin, mid, 1, 1) if t != 1 else None
        self.depthwise = cbr6(mid, mid, 3, stride, groups=mid)
        self.project = cbr6(mid, cout, 1, 1, relu=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class MobileTrunk(nn.Module):
    """MobileNetV2 to its stride-16 stage (96 channels at S/16) on one gray
    channel: the first conv's kernel is the RGB kernel summed over colour, so
    a gray image gives what it gives as R=G=B."""

    def __init__(self, blocks=len(MNV2_BLOCKS)):
        super().__init__()
        layers, cin = [cbr6(1, 32, 3, 2)], 32
        for t, c, s in MNV2_BLOCKS[:blocks]:
            layers.append(InvertedResidual(cin, t, c, s))
            cin = c
        self.layers = nn.Sequential(*layers)
        self.channels = cin

    def forward(self, x):
        return self.layers(x)

    def load_keras(self, weights):
        """Set every conv and BN from a dict of Keras tensors (name -> array),
        e.g. read_keras_weights(); raises if one is missing."""
        def conv(seq, name, depthwise=False):
            c, bn = [m for m in seq if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
            k = weights[name + ("/depthwise_kernel" if depthwise else "/kernel")]
            k = np.transpose(k, (2, 3, 0, 1) if depthwise else (3, 2, 0, 1))
            if c.in_channels == 1 and k.shape[1] == 3:
                k = k.sum(axis=1, keepdims=True)
            if tuple(k.shape) != tuple(c.weight.shape):
                raise ValueError("%s: kernel %s, conv wants %s" % (name, k.shape, tuple(c.weight.shape)))
            bname = {"Conv1": "bn_Conv1"}.get(name, name + "_BN")
            with torch.no_grad():
                c.weight.copy_(torch.from_numpy(np.ascontiguousarray(k, np.float32)))
                for attr, key in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                  ("running_var", "moving_variance")):
                    getattr(bn, attr).copy_(torch.from_numpy(np.asarray(weights[bname + "/" + key], np.float32)))
        conv(self.layers[0], "Conv1")
        for i, blk in enumerate(self.layers[1:]):
            pre = "expanded_conv" if i == 0 else "block_%d" % i
            if blk.expand is not None:
                conv(blk.expand, pre + "_expand")
            conv(blk.depthwise, pre + "_depthwise", depthwise=True)
            conv(blk.project, pre + "_project")


def read_keras_weights(d):
    """A TensorFlow.js weights folder (manifest.json with a "weights" list as
    in a weightsManifest group, and weights.bin) -> {name: float32 array};
    uint8-quantised entries are dequantised (q * scale + min)."""
    with open(os.path.join(d, "manifest.json")) as f:
        specs = json.load(f)["weights"]
    with open(os.path.join(d, "weights.bin"), "rb") as f:
        buf = f.read()
    out, off = {}, 0
    for w in specs:
        n = int(np.prod(w["shape"])) if w["shape"] else 1
        q = w.get("quantization")
        if q:
            if q["dtype"] != "uint8":
                raise ValueError("%s: quantisation %s not supported" % (w["name"], q["dtype"]))
            a = np.frombuffer(buf, np.uint8, n, off).astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            off += n
        else:
            if w["dtype"] != "float32":
                raise ValueError("%s: dtype %s not supported" % (w["name"], w["dtype"]))
            a = np.frombuffer(buf, np.float32, n, off).copy()
            off += 4 * n
        out[w["name"]] = a.reshape(w["shape"])
    if off != len(buf):
        raise ValueError("weights.bin has %d bytes, the manifest describes %d" % (len(buf), off))
    return out


class MobileSegNet(SegTileNet):
    """SegTileNet's heads on a MobileNetV2 trunk (train.py --arch mnv2seg
    --pretrained DIR starts it from ImageNet-trained weights); width is ignored."""

    def __init__(self, classes, width=16, dropout=0.2):
        super().__init__(classes, 12, dropout)  # 8 * 12 = the trunk's 96 channels
        self.features = MobileTrunk()

    def fuse_bn(self):
        fold_bn(self.features)
        return self


def fold_bn(module):
    """Folds every conv + batch-norm pair of module's Sequentials into the
    conv (the batch norm becomes an Identity, so module names and indices
    stay) with the batch norm's running statistics, as eval mode computes
    it; module must be in eval mode. Returns how many were folded.

    train.py folds the frozen layers of a pretrained trunk this way before
    training: their statistics never change, and on a CPU a batch norm over
    the trunk's first, largest activations costs as much memory traffic as
    the conv before it (a sixth of a MobileSegNet training step)."""
    n = 0
    for m in module.modules():
        if isinstance(m, nn.Sequential) and len(m) >= 2:
            for i in range(len(m) - 1):
                if isinstance(m[i], nn.Conv2d) and isinstance(m[i + 1], nn.BatchNorm2d):
                    m[i] = torch.nn.utils.fusion.fuse_conv_bn_eval(m[i], m[i + 1])
                    m[i + 1] = nn.Identity()
                    n += 1
    return n


ARCHS = {"tilenet": TileNet, "segnet": SegTileNet, "plainseg": PlainSegNet, "mnv2seg": MobileSegNet}


def standardise(x):
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    v = ((x - m) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) / torch.sqrt(v + EPS)


class Serving(nn.Module):
    """x in [0,1] -> (logits, cam), standardisation, TTA and ensemble included."""

    def __init__(self, nets, tta=False, logit_bias=None):
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.tta = tta
        # a constant added to the logits (train.py --prior-fit); absent, the
        # graph has no such node
        self.has_bias = logit_bias is not None
        if self.has_bias:
            self.register_buffer("logit_bias", torch.as_tensor(logit_bias, dtype=torch.float32).view(1, -1))

    def forward(self, x):
        x = standardise(x)
        if self.tta:
            x = torch.cat([x, x.flip(3), x.flip(2), x.flip(2).flip(3)], 0)
        logits, cams = 0, 0
        for net in self.nets:
            lg, cam = net(x)
            logits, cams = logits + lg, cams + cam
        logits, cams = logits / len(self.nets), cams / len(self.nets)
        if self.tta:
            k, h, w = cams.shape[1], cams.shape[2], cams.shape[3]
            lg4 = logits.reshape(4, -1, logits.shape[1])
            c4 = cams.reshape(4, -1, k, h, w)
            logits = lg4.mean(0)
            cams = (c4[0] + c4[1].flip(3) + c4[2].flip(2) + c4[3].flip(2).flip(3)) / 4
        if self.has_bias:
            logits = logits + self.logit_bias
        return logits, cams


def fuse(net):
    """A copy of net with every conv+BN folded into one conv (eval mode)."""
    net = copy.deepcopy(net).eval()
    if hasattr(net, "fuse_bn"):
        return net.fuse_bn()
    for i, blk in enumerate(net.features):
        if not isinstance(blk, nn.Sequential):
            continue  # max pooling
        conv, bn, relu = blk[0], blk[1], blk[2]
        net.features[i] = nn.Sequential(torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn), relu)
    return net


def export_fp32(serving, size, path):
    """size: the input side, or (W, H)."""
    serving = serving.eval()
    w, h = (size, size) if isinstance(size, int) else size
    x = torch.zeros(1, 1, h, w)
    torch.onnx.export(serving, x, path, input_names=["input"], output_names=["logits", "cam"],
                      opset_version=OPSET, do_constant_folding=True,
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}, "cam": {0: "N"}})
    m = onnx.load(path)
    if unalias_initializers(m) + fold_pads(m):
        onnx.save(m, path)
    onnx.checker.check_model(m)
    return m


def unalias_initializers(model):
    """Give each conv its own weights again. The exporter keeps one copy of
    identical initializers and turns the others into Identity nodes (two
    MobileSegNets of an ensemble share their frozen first layers); the int8
    export quantises each conv's weights by their name. Each Identity of an
    initializer becomes a copy of it under the Identity's output name.
    Returns the number replaced."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    alias = [n for n in g.node if n.op_type == "Identity" and n.input[0] in inits]
    for n in alias:
        t = onnx.TensorProto()
        t.CopyFrom(inits[n.input[0]])
        t.name = n.output[0]
        g.initializer.append(t)
        g.node.remove(n)
    return len(alias)


# ops a constant subgraph may hold (what torch 1.13 exports for a pad's amounts)
_CONST_OPS = ("Constant", "ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast")


def _const_value(name, prod, inits, memo):
    """The numpy value of tensor name when it is computed from constants
    alone through _CONST_OPS; None otherwise."""
    if name in memo:
        return memo[name]
    val = None
    if name in inits:
        val = numpy_helper.to_array(inits[name])
    elif name in prod and prod[name].op_type in _CONST_OPS:
        n = prod[name]
        att = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        ins = [_const_value(i, prod, inits, memo) if i else None for i in n.input]
        if all(v is not None for v, i in zip(ins, n.input) if i):
            t = n.op_type
            if t == "Constant" and "value" in att:
                val = numpy_helper.to_array(att["value"])
            elif t == "ConstantOfShape":
                fill = numpy_helper.to_array(att["value"]) if "value" in att else np.zeros(1, np.float32)
                val = np.full(tuple(int(d) for d in ins[0]), fill.reshape(-1)[0], fill.dtype)
            elif t == "Concat":
                val = np.concatenate(ins, axis=att["axis"])
            elif t == "Reshape":
                shape = [int(d) if d != 0 else ins[0].shape[i] for i, d in enumerate(ins[1])]
                val = ins[0].reshape(shape)
            elif t == "Slice":
                data, starts, ends = ins[0], ins[1], ins[2]
                axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
                steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
                idx = [slice(None)] * data.ndim
                for a, b, e, st in zip(axes, starts, ends, steps):
                    idx[int(a)] = slice(int(b), int(e), int(st))
                val = data[tuple(idx)]
            elif t == "Transpose":
                val = np.transpose(ins[0], att.get("perm"))
            elif t == "Cast":
                val = ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[att["to"]])
    memo[name] = val
    return val


def fold_pads(model):
    """Fold each zero Pad of the spatial dimensions that feeds only Convs into
    those Convs' pads attributes, and drop the constant nodes that computed
    its amounts. MobileTrunk pads right and bottom before its stride-2
    convs (Keras' padding), which torch exports as a Pad op: ONNX Runtime
    fuses Pad+Conv in a float graph, but in the int8 QDQ graph the Pad sits
    between a conv's output and the next QuantizeLinear, so that conv ran
    in float and the pad on its float output (a third of the int8 graph's
    time on the session-10 VM). The arithmetic is unchanged: the conv sees
    the same zeros. Returns the number of pads folded."""
    g = model.graph
    prod = {o: n for n in g.node for o in n.output}
    inits = {i.name: i for i in g.initializer}
    cons = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}
    memo, folded = {}, 0
    for pad in list(g.node):
        if pad.op_type != "Pad" or pad.output[0] in outputs:
            continue
        mode = [helper.get_attribute_value(a) for a in pad.attribute if a.name == "mode"]
        if mode and mode[0] not in (b"constant", "constant"):
            continue
        # one conv, or several (the exporter merges identical pads of two
        # networks of an ensemble): the pad is folded into each
        users = cons.get(pad.output[0], [])
        if not users or any(u.op_type != "Conv" for u in users):
            continue
        amounts = _const_value(pad.input[1], prod, inits, memo)
        fill = _const_value(pad.input[2], prod, inits, memo) if len(pad.input) > 2 and pad.input[2] else np.zeros(1)
        if amounts is None or fill is None or amounts.size != 8 or np.any(fill != 0):
            continue
        a = [int(v) for v in amounts.reshape(-1)]
        if a[0] or a[1] or a[4] or a[5] or min(a) < 0:
            continue
        atts = [{x.name: x for x in conv.attribute} for conv in users]
        if any("auto_pad" in att and helper.get_attribute_value(att["auto_pad"]) not in (b"NOTSET", "NOTSET")
               for att in atts):
            continue
        for conv, att in zip(users, atts):
            old = list(helper.get_attribute_value(att["pads"])) if "pads" in att else [0, 0, 0, 0]
            new = [old[0] + a[2], old[1] + a[3], old[2] + a[6], old[3] + a[7]]
            if "pads" in att:
                conv.attribute.remove(att["pads"])
            conv.attribute.append(helper.make_attribute("pads", new))
            conv.input[0] = pad.input[0]
        g.node.remove(pad)
        folded += 1
    if folded:
        # drop what only the folded pads read
        while True:
            used = {i for n in g.node for i in n.input} | outputs
            dead = [n for n in g.node if not any(o in used for o in n.output)]
            if not dead:
                break
            for n in dead:
                g.node.remove(n)
    return folded


def residual_projections(net):
    """Names of the convs whose output goes to a residual add (MobileNetV2's
    projections in a block with a shortcut): int8 quantises their outputs
    too, so that ONNX Runtime runs them and the adds as quantised kernels."""
    return {n + ".project.0" for n, m in net.named_modules() if isinstance(m, InvertedResidual) and m.residual}


def calibrate_ranges(serving, images):
    """Min/max of every conv's input over images ([N,1,S,S] in [0,1]), keyed by
    module name, and of each residual projection's output, keyed NAME:out."""
    ranges = {}
    outs = residual_projections(serving)

    def hook(name):
        def f(mod, inp, out):
            for key, t in ((name, inp[0]), (name + ":out", out)):
                if key.endswith(":out") and name not in outs:
                    continue
                t = t.detach()
                lo, hi = ranges.get(key, (0.0, 0.0))
                ranges[key] = (min(lo, float(t.min())), max(hi, float(t.max())))
        return f

    hs = [m.register_forward_hook(hook(n)) for n, m in serving.named_modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for i in range(0, len(images), 16):
            serving(images[i:i + 16])
    for h in hs:
        h.remove()
    return ranges


def act_qparams(lo, hi):
    """uint8 scale and zero point of a calibrated range (widened to hold 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / 255.0, 1e-8)
    return scale, int(round(-lo / scale))


def quantize_qdq(fp32_path, ranges, dst):
    """Static int8 QDQ: uint8 per-tensor activations (calibrated), int8 per-channel
    symmetric weights, int32 biases, around every Conv; the ONNX Runtime QDQ
    transformers fuse them into QLinearConv (ReLU folds into the following
    QuantizeLinear because post-ReLU ranges have zero point 0). Where ranges
    has a conv's output (NAME:out, residual projections), that output gets a
    QDQ pair too and every Add reads the dequantised copies of its inputs, so
    the residual adds run as QLinearAdd; other graphs are unchanged."""
    model = onnx.load(fp32_path)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes, done_act, done_w = [], {}, set()
    out_q = {}  # conv output tensor -> its dequantised copy
    for node in g.node:
        if node.op_type != "Conv":
            new_nodes.append(node)
            continue
        wname = node.input[1]
        mod = wname.rsplit(".", 1)[0]
        if mod not in ranges:
            raise RuntimeError("no calibration range for conv weight %s (have %s)" % (wname, sorted(ranges)))
        scale, zp = act_qparams(*ranges[mod])
        a = node.input[0]
        if a not in done_act:
            s_name, z_name = a + ".act_scale", a + ".act_zp"
            g.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), s_name),
                                  numpy_helper.from_array(np.array(zp, np.uint8), z_name)])
            new_nodes.append(helper.make_node("QuantizeLinear", [a, s_name, z_name], [a + "_q"], name=a + "_aq"))
            new_nodes.append(helper.make_node("DequantizeLinear", [a + "_q", s_name, z_name], [a + "_dq"], name=a + "_adq"))
            done_act[a] = scale
        scale = done_act[a]
        w = numpy_helper.to_array(inits[wname])
        ws = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127.0, 1e-8)
        if len(node.input) > 2:
            # a channel whose weights are all (nearly) zero - MobileNetV2 has
            # such depthwise filters - would put its bias out of int32 range
            ws = np.maximum(ws, np.abs(numpy_helper.to_array(inits[node.input[2]])) / (scale * BIAS_RANGE))
        ws = ws.astype(np.float32)
        if wname not in done_w:
            wq = np.clip(np.round(w / ws.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
            g.initializer.extend([numpy_helper.from_array(wq, wname + "_q"),
                                  numpy_helper.from_array(ws, wname + "_scale"),
                                  numpy_helper.from_array(np.zeros(w.shape[0], np.int8), wname + "_zp")])
            new_nodes.append(helper.make_node("DequantizeLinear", [wname + "_q", wname + "_scale", wname + "_zp"],
                                              [wname + "_dq"], name=wname + "_wdq", axis=0))
            if len(node.input) > 2:
                bname = node.input[2]
                b = numpy_helper.to_array(inits[bname])
                bs = (ws * np.float32(scale)).astype(np.float32)
                bq = np.round(b / bs).astype(np.int32)
                g.initializer.extend([numpy_helper.from_array(bq, bname + "_q"),
                                      numpy_helper.from_array(bs, bname + "_scale"),
                                      numpy_helper.from_array(np.zeros(w.shape[0], np.int32), bname + "_zp")])
                new_nodes.append(helper.make_node("DequantizeLinear", [bname + "_q", bname + "_scale", bname + "_zp"],
                                                  [bname + "_dq"], name=bname + "_bdq", axis=0))
            done_w.add(wname)
        node.input[0] = a + "_dq"
        node.input[1] = wname + "_dq"
        if len(node.input) > 2:
            node.input[2] = node.input[2] + "_dq"
        new_nodes.append(node)
        if mod + ":out" in ranges:
            o = node.output[0]
            s_o, z_o = act_qparams(*ranges[mod + ":out"])
            g.initializer.extend([numpy_helper.from_array(np.array(s_o, np.float32), o + ".act_scale"),
                                  numpy_helper.from_array(np.array(z_o, np.uint8), o + ".act_zp")])
            new_nodes.append(helper.make_node("QuantizeLinear", [o, o + ".act_scale", o + ".act_zp"], [o + "_q"],
                                              name=o + "_oq"))
            new_nodes.append(helper.make_node("DequantizeLinear", [o + "_q", o + ".act_scale", o + ".act_zp"],
                                              [o + "_dq"], name=o + "_odq"))
            out_q[o] = o + "_dq"
    if out_q:
        dq = {a: a + "_dq" for a in done_act}
        dq.update(out_q)
        for n in new_nodes:
            if n.op_type == "Add":
                for i, t in enumerate(n.input):
                    if t in dq:
                        n.input[i] = dq[t]
    used = set()
    for n in new_nodes:
        used.update(n.input)
    for name in list(inits):
        if name not in used:
            g.initializer.remove(inits[name])
    del g.node[:]
    g.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return model


def fake_quant(t, s, zp):
    """t through uint8 QuantizeLinear and DequantizeLinear (scale s, zero point zp)."""
    return (torch.clamp(torch.round(t / s) + zp, 0, 255) - zp) * s


def fake_quant_forward(serving_fused, ranges, x):
    """The int8 graph's arithmetic, simulated in torch (fake-quantised weights
    and conv inputs), so thresholds of the int8 package can be calibrated on
    its own outputs without ONNX Runtime in Python."""
    q = copy.deepcopy(serving_fused).eval()
    hooks = []
    for name, m in q.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue
        w = m.weight.data
        ws = (w.abs().reshape(w.shape[0], -1).amax(1) / 127.0).clamp(min=1e-8)
        s, zp = act_qparams(*ranges[name])
        if m.bias is not None:
            ws = torch.maximum(ws, m.bias.data.abs() / (s * BIAS_RANGE))
        m.weight.data = (torch.round(w / ws.view(-1, 1, 1, 1)).clamp(-127, 127)) * ws.view(-1, 1, 1, 1)
        if m.bias is not None:
            bs = ws * s
            m.bias.data = torch.round(m.bias.data / bs) * bs

        def pre(mod, inp, s=s, zp=zp):
            return fake_quant(inp[0], s, zp),
        hooks.append(m.register_forward_pre_hook(pre))
        if name + ":out" in ranges:
            so, zo = act_qparams(*ranges[name + ":out"])

            def post(mod, inp, out, s=so, zp=zo):
                return fake_quant(out, s, zp)
            hooks.append(m.register_forward_hook(post))
    # a residual add reads its block's input as the int8 graph does: the
    # dequantised copy made for the block's first conv
    for name, m in q.named_modules():
        if isinstance(m, InvertedResidual) and m.residual and name + ".project.0:out" in ranges:
            first = name + (".expand.0" if m.expand is not None else ".depthwise.0")
            si, zi = act_qparams(*ranges[first])

            def pre_block(mod, inp, s=si, zp=zi):
                return fake_quant(inp[0], s, zp),
            hooks.append(m.register_forward_pre_hook(pre_block))
    with torch.no_grad():
        out = [q(x[i:i + 32]) for i in range(0, len(x), 32)]
    for h in hooks:
        h.remove()
    return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])
