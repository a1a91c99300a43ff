package eval

import "math"

// Confidence is the confidence of the bounds LineSight reports on escape
// and false-reject rates (one-sided).
const Confidence = 0.95

// UpperBound is the one-sided Clopper-Pearson upper bound, at confidence
// conf, on a rate of which k events were seen in n trials: the largest p
// under which k or fewer events would still be seen with probability at
// least 1-conf. No escapes among 33 defective parts bound the escape rate
// under 8.7 % at 95 %, not under 1 %: the figure says how far a small
// labelled set can vouch for a target. It is 1 when n is 0 or k >= n.
func UpperBound(k, n int, conf float64) float64 {
	if n <= 0 || k >= n {
		return 1
	}
	k = max(k, 0)
	if k == 0 {
		// P(0 events) = (1-p)^n = 1-conf, solved exactly.
		return -math.Expm1(math.Log1p(-conf) / float64(n))
	}
	// binomCDF falls as p rises: bisect for binomCDF(p) = 1-conf.
	lo, hi := float64(k)/float64(n), 1.0
	for range 100 {
		mid := (lo + hi) / 2
		if binomCDF(k, n, mid) > 1-conf {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// ZeroEventTrials is how many trials without an event it takes for
// UpperBound to fall to rate or under: 299 defective parts, none passed,
// vouch for an escape rate of 1 % at 95 %.
func ZeroEventTrials(rate, conf float64) int {
	if rate <= 0 || rate >= 1 {
		return 0
	}
	return int(math.Ceil(math.Log1p(-conf)/math.Log1p(-rate) - 1e-9))
}

// binomCDF is P(X <= k) for X ~ Binomial(n, p), 0 < p < 1, summed in log
// space so that large n does not overflow.
func binomCDF(k, n int, p float64) float64 {
	lp, lq := math.Log(p), math.Log1p(-p)
	lgn, _ := math.Lgamma(float64(n + 1))
	s := 0.0
	for i := 0; i <= k; i++ {
		li, _ := math.Lgamma(float64(i + 1))
		lni, _ := math.Lgamma(float64(n - i + 1))
		s += math.Exp(lgn - li - lni + float64(i)*lp + float64(n-i)*lq)
	}
	return s
}
