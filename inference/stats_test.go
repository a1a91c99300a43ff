package inference

import (
	"image"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"gocv.io/x/gocv"
)

// TestGrayStatsMatchesMeasurer compares the integer one-pass statistics
// with the OpenCV Measurer (the numbers the training script's numpy code
// gives, see measure_test.go) on random and edge-case images.
func TestGrayStatsMatchesMeasurer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	meas := NewMeasurer()
	defer meas.Close()
	for _, sz := range []struct{ w, h int }{{1, 1}, {1, 5}, {5, 1}, {2, 2}, {3, 7}, {64, 48}, {128, 128}, {257, 31}} {
		for _, kind := range []string{"random", "flat", "ramp", "extremes"} {
			pix := make([]uint8, sz.w*sz.h)
			for i := range pix {
				switch kind {
				case "random":
					pix[i] = uint8(rng.IntN(256))
				case "flat":
					pix[i] = 77
				case "ramp":
					pix[i] = uint8(i % 256)
				case "extremes":
					pix[i] = uint8(255 * (i % 2))
				}
			}
			m, err := gocv.NewMatFromBytes(sz.h, sz.w, gocv.MatTypeCV8UC1, pix)
			if err != nil {
				t.Fatal(err)
			}
			want, err := meas.Measure(m, image.Rectangle{})
			m.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := grayStats(pix, sz.w, sz.w, sz.h)
			for _, c := range []struct {
				name    string
				got, wt float64
			}{{"brightness", got.Brightness, want.Brightness}, {"contrast", got.Contrast, want.Contrast}, {"sharpness", got.Sharpness, want.Sharpness}} {
				if math.Abs(c.got-c.wt) > 1e-9*math.Max(1, math.Abs(c.wt)) {
					t.Errorf("%dx%d %s: %s %.12g, Measurer %.12g", sz.w, sz.h, kind, c.name, c.got, c.wt)
				}
			}
		}
	}
}

func BenchmarkGrayStats(b *testing.B) {
	for _, n := range []int{128, 256} {
		pix := make([]uint8, n*n)
		for i := range pix {
			pix[i] = uint8(i * 31)
		}
		m, _ := gocv.NewMatFromBytes(n, n, gocv.MatTypeCV8UC1, pix)
		meas := NewMeasurer()
		b.Run("go/"+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				grayStats(pix, n, n, n)
			}
		})
		b.Run("opencv/"+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				meas.Measure(m, image.Rectangle{})
			}
		})
		meas.Close()
		m.Close()
	}
}
