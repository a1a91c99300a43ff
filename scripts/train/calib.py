"""Threshold calibration and metrics, with the decision rule of the policy layer.

For one part with class probabilities p: good = sum of p over the good labels,
defect = 1 - good. The policy (agent/policy, issue 6) decides

    pass    when good   >= pass threshold
    reject  when defect >= reject threshold
    defer   otherwise (to a human).

Both thresholds are calibrated above 0.5 (the policy refuses partial
automation otherwise), so at most one of the first two can hold.

Rates, as `linesight model eval` (inference/eval) computes them:
    escape rate       = defective parts auto-passed / defective parts
    false-reject rate = good parts auto-rejected / good parts
    automation rate   = parts auto-passed or auto-rejected / parts
    defer rate        = 1 - automation rate
"""
import numpy as np

# The policy needs thresholds strictly above 0.5 for partial automation.
FLOOR = 0.5000001


def decide(good, pass_t, reject_t):
    """0 pass, 1 reject, 2 defer, per part."""
    good = np.asarray(good, np.float64)
    out = np.full(len(good), 2)
    out[(1 - good) >= reject_t] = 1
    out[good >= pass_t] = 0
    return out


def rates(good, is_good, pass_t, reject_t):
    d = decide(good, pass_t, reject_t)
    is_good = np.asarray(is_good, bool)
    n, ng, nd = len(d), int(is_good.sum()), int((~is_good).sum())
    esc = int(((d == 0) & ~is_good).sum())
    fr = int(((d == 1) & is_good).sum())
    auto = int((d != 2).sum())
    return {
        "automation_rate": auto / n if n else 0.0,
        "escape_rate": esc / nd if nd else 0.0,
        "false_reject_rate": fr / ng if ng else 0.0,
        "defer_rate": 1 - auto / n if n else 0.0,
        "escapes": esc, "false_rejects": fr,
    }


def _threshold(neg_scores, target, floor=FLOOR):
    """Smallest threshold t >= floor with share(neg_scores >= t) <= target,
    moved half-way to the next score above it for a margin, capped at 1.

    neg_scores are the scores of the parts that must not be auto-decided this
    way (defects for the pass threshold, good parts for the reject one).
    """
    s = np.sort(np.asarray(neg_scores, np.float64))[::-1]
    allowed = int(np.floor(target * len(s) + 1e-9))
    # The (allowed+1)-th highest negative score must fall below t.
    if allowed >= len(s):
        return floor
    must_exclude = s[allowed]
    t = max(floor, np.nextafter(must_exclude, 2.0))
    return float(min(t, 1.0))


def calibrate(good, is_good, target_escape=0.01, target_false_reject=0.02, floor=None):
    """Return (pass_t, reject_t) meeting the targets on these parts.

    The threshold is placed half-way between the last excluded negative score
    and the next positive score above it (the same val figures, with a margin).
    """
    floor = FLOOR if floor is None else floor
    good = np.asarray(good, np.float64)
    is_good = np.asarray(is_good, bool)
    p = _threshold(good[~is_good], target_escape, floor)
    above = np.sort(good[is_good & (good >= p)])
    if len(above) and above[0] > p:
        p = float((p + above[0]) / 2)
    d = 1 - good
    r = _threshold(d[is_good], target_false_reject, floor)
    above = np.sort(d[~is_good & (d >= r)])
    if len(above) and above[0] > r:
        r = float((r + above[0]) / 2)
    return min(p, 1.0), min(r, 1.0)


def fit_good_bias(good, is_good):
    """The log-odds shift b that makes P(good) calibrated on these parts.

    A network trained on class-balanced batches (and on good images turned
    into synthetic defects) learns a class mix that is not the line's, so its
    P(good) sits too low and the policy's rule (pass above 0.5) loses
    meaning. Adding b to the good classes' logits multiplies the odds of
    good by e^b and leaves the ranking of the parts as it was. b is the
    maximum-likelihood value with Platt's smoothed targets ((n+1)/(n+2) for
    good, 1/(m+2) for defective), so it stays finite when the parts are
    separable. good: P(good) per part before the shift."""
    good = np.clip(np.asarray(good, np.float64), 1e-12, 1 - 1e-12)
    is_good = np.asarray(is_good, bool)
    n, m = int(is_good.sum()), int((~is_good).sum())
    if n == 0 or m == 0:
        return 0.0
    z = np.log(good) - np.log1p(-good)
    t = np.where(is_good, (n + 1) / (n + 2), 1 / (m + 2))
    b = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(z + b)))
        step = (p - t).sum() / max((p * (1 - p)).sum(), 1e-12)
        b -= float(np.clip(step, -5, 5))
        if abs(step) < 1e-12:
            break
    return b


def classification(labels, y, pred):
    k = len(labels)
    conf = np.zeros((k, k), int)
    for t, p in zip(y, pred):
        conf[t, p] += 1
    per, f1s = {}, []
    for i, l in enumerate(labels):
        tp = conf[i, i]
        prec = tp / conf[:, i].sum() if conf[:, i].sum() else 0.0
        rec = tp / conf[i].sum() if conf[i].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[l] = {"precision": float(prec), "recall": float(rec), "f1": float(f1), "support": int(conf[i].sum())}
        if conf[i].sum():
            f1s.append(f1)
    acc = float(np.trace(conf) / max(1, conf.sum()))
    return {"accuracy": acc, "macro_f1": float(np.mean(f1s)) if f1s else 0.0, "per_class": per,
            "confusion": conf.tolist()}


def auroc(defect_score, is_defect):
    """Area under the ROC curve of defect_score for separating defects (ties count half)."""
    s = np.asarray(defect_score, np.float64)
    y = np.asarray(is_defect, bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return 0.0
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
