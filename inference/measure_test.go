package inference

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"gocv.io/x/gocv"
)

// measureRef is the definition in plain Go: population mean and standard
// deviation of gray/255, and the variance of the 4-neighbour Laplacian with
// reflect-101 borders.
func measureRef(pix []uint8, w, h int) InputStats {
	at := func(x, y int) float64 {
		refl := func(i, n int) int {
			if n == 1 {
				return 0
			}
			for i < 0 || i >= n {
				if i < 0 {
					i = -i
				}
				if i >= n {
					i = 2*n - 2 - i
				}
			}
			return i
		}
		return float64(pix[refl(y, h)*w+refl(x, w)]) / 255
	}
	var sum, sq, lsum, lsq float64
	n := float64(w * h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := at(x, y)
			sum += v
			sq += v * v
			l := at(x-1, y) + at(x+1, y) + at(x, y-1) + at(x, y+1) - 4*v
			lsum += l
			lsq += l * l
		}
	}
	mean := sum / n
	lmean := lsum / n
	return InputStats{Brightness: mean, Contrast: math.Sqrt(sq/n - mean*mean), Sharpness: lsq/n - lmean*lmean}
}

func TestMeasureMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const w, h = 97, 61
	pix := make([]uint8, w*h)
	for i := range pix {
		pix[i] = uint8(60 + rng.IntN(80) + (i%w)/3)
	}
	mat, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC1, pix)
	if err != nil {
		t.Fatal(err)
	}
	defer mat.Close()
	m := NewMeasurer()
	defer m.Close()
	got, err := m.Measure(mat, image.Rectangle{})
	if err != nil {
		t.Fatal(err)
	}
	want := measureRef(pix, w, h)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"brightness", got.Brightness, want.Brightness}, {"contrast", got.Contrast, want.Contrast}, {"sharpness", got.Sharpness, want.Sharpness}} {
		if math.Abs(c.got-c.want) > 1e-9*math.Max(1, math.Abs(c.want)) {
			t.Errorf("%s = %.12f, definition gives %.12f", c.name, c.got, c.want)
		}
	}

	// BGR input measures its BT.601 gray; a ROI measures only itself.
	bgr := gocv.NewMat()
	defer bgr.Close()
	gocv.CvtColor(mat, &bgr, gocv.ColorGrayToBGR)
	if g2, _ := m.Measure(bgr, image.Rectangle{}); math.Abs(g2.Brightness-got.Brightness) > 1e-9 {
		t.Errorf("BGR of a gray image should measure the same: %v vs %v", g2, got)
	}
	roi := image.Rect(10, 5, 50, 40)
	sub := make([]uint8, 0, roi.Dx()*roi.Dy())
	for y := roi.Min.Y; y < roi.Max.Y; y++ {
		sub = append(sub, pix[y*w+roi.Min.X:y*w+roi.Max.X]...)
	}
	gr, _ := m.Measure(mat, roi)
	if wr := measureRef(sub, roi.Dx(), roi.Dy()); math.Abs(gr.Sharpness-wr.Sharpness) > 1e-9 || math.Abs(gr.Brightness-wr.Brightness) > 1e-9 {
		t.Errorf("ROI stats %v, definition %v", gr, wr)
	}
}

func TestMeasureBadInput(t *testing.T) {
	m := NewMeasurer()
	defer m.Close()
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := m.Measure(empty, image.Rectangle{}); err == nil {
		t.Error("empty image: want an error")
	}
	small := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV8UC1)
	defer small.Close()
	if _, err := m.Measure(small, image.Rect(5, 5, 20, 20)); err == nil {
		t.Error("roi outside the image: want an error")
	}
	f32 := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV32F)
	defer f32.Close()
	if _, err := m.Measure(f32, image.Rectangle{}); err == nil {
		t.Error("float image: want an error")
	}
}

func BenchmarkMeasure640x480(b *testing.B) {
	mat := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(100, 120, 140, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer mat.Close()
	m := NewMeasurer()
	defer m.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Measure(mat, image.Rectangle{}); err != nil {
			b.Fatal(err)
		}
	}
}
