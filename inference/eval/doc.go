// Package eval is LineSight's yardstick: it runs a model package through the
// Go inference path (gocv decoding and preprocessing, ONNX Runtime) on a
// labelled folder (ROOT/CLASS/NAME.jpg) and measures what the device would
// do with it: the confusion matrix, per-class precision, recall and F1,
// accuracy, and at the policy's thresholds the automation, escape,
// false-reject and defer rates.
//
// The decision rule is the policy layer's (agent/policy, issue 6) for the
// partial automation level: with good = the summed probability of the good
// labels and defect = 1 - good,
//
//	reject  when defect >= Reject, or a defect label's probability >= its
//	        per-class threshold (checked first: when in doubt, never pass)
//	pass    when good >= Pass
//	defer   otherwise
//
// Rates are per population: the escape rate is the share of defective parts
// that were passed, the false-reject rate the share of good parts that were
// rejected, the automation rate the share of all parts decided without a
// human, and the defer rate its complement. scripts/train/calib.py
// calibrates thresholds with the same definitions. The escape and
// false-reject rates come with their one-sided 95 % Clopper-Pearson upper
// bounds (UpperBound): no escape among 33 defective parts vouches for an
// escape rate under 8.7 %, not under 1 % (that takes 299, ZeroEventTrials).
// For a model with windows each part also records the view that decided it.
//
// The metric functions (Confusion, Classification, Rates, UpperBound) are
// pure; Evaluate drives a Scorer over a Dataset; EngineScorer is the
// device's path.
package eval
