package eval

import (
	"math"
	"testing"
)

// Calibrate gives what scripts/train/calib.py's calibrate gives on the
// same scores (values printed by calib.py).
func TestCalibrateMatchesPython(t *testing.T) {
	good := []float64{0.99, 0.97, 0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.3, 0.1}
	bad := []float64{0.98, 0.96, 0.93, 0.85, 0.75, 0.65, 0.52, 0.4, 0.2, 0.05}
	scores := append(append([]float64{}, good...), bad...)
	isGood := make([]bool, len(scores))
	for i := range good {
		isGood[i] = true
	}
	for _, c := range []struct{ esc, fr, pass, reject float64 }{
		{0.01, 0.02, 0.9850000000000001, 0.925},
		{0.1, 0.1, 0.9650000000000001, 0.75},
		{0.2, 0.3, 0.9400000000000001, 0.55000005},
	} {
		p, r := Calibrate(scores, isGood, c.esc, c.fr)
		if math.Abs(p-c.pass) > 1e-9 || math.Abs(r-c.reject) > 1e-7 {
			t.Errorf("Calibrate(%v, %v) = %v, %v; calib.py: %v, %v", c.esc, c.fr, p, r, c.pass, c.reject)
		}
	}
}
