package eval

import (
	"math"
	"slices"
	"sort"
)

// ThresholdFloor is the lowest threshold Calibrate gives: the policy needs
// thresholds above 0.5 for partial automation (at most one of pass and
// reject can then hold).
const ThresholdFloor = 0.5000001

// Calibrate returns the lowest pass threshold (on P(good)) with an escape
// rate (defective parts at or above it / defective parts) at most
// targetEscape, and the lowest reject threshold (on 1 - P(good)) with a
// false-reject rate at most targetFalseReject, both at least ThresholdFloor
// and each moved half-way to the next score that must stay automated, for
// a margin. good[i] is part i's P(good), isGood[i] its truth. It is
// scripts/train/calib.py's calibrate, so Go and Python agree (pure).
func Calibrate(good []float64, isGood []bool, targetEscape, targetFalseReject float64) (pass, reject float64) {
	var defGood, goodGood, goodDef, defDef []float64
	for i, g := range good {
		if isGood[i] {
			goodGood, goodDef = append(goodGood, g), append(goodDef, 1-g)
		} else {
			defGood, defDef = append(defGood, g), append(defDef, 1-g)
		}
	}
	return threshold(defGood, goodGood, targetEscape), threshold(goodDef, defDef, targetFalseReject)
}

// threshold: the smallest t >= ThresholdFloor with share(neg >= t) <=
// target, moved half-way to the lowest pos score above it, capped at 1.
func threshold(neg, pos []float64, target float64) float64 {
	s := slices.Clone(neg)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	allowed := int(math.Floor(target*float64(len(s)) + 1e-9))
	t := ThresholdFloor
	if allowed < len(s) {
		t = math.Max(ThresholdFloor, math.Nextafter(s[allowed], 2))
	}
	t = math.Min(t, 1)
	above := math.Inf(1)
	for _, v := range pos {
		if v >= t && v < above {
			above = v
		}
	}
	if !math.IsInf(above, 1) && above > t {
		t = (t + above) / 2
	}
	return math.Min(t, 1)
}
