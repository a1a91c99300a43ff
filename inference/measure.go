package inference

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// InputStats are the statistics of one frame that the drift monitor and the
// out-of-distribution guardrail compare with the manifest's Reference.
type InputStats struct {
	Brightness float64 // mean of gray/255
	Contrast   float64 // standard deviation of gray/255
	Sharpness  float64 // variance of the 3x3 Laplacian of gray/255
}

// Measurer computes InputStats exactly as the training script measures the
// reference (see doc.go): on the gray (BT.601) ROI image scaled to [0,1],
// population statistics, cv2.Laplacian with ksize 1 (the 4-neighbour
// kernel) and the reflect-101 border. It reuses its scratch Mats, so it is
// not safe for concurrent use: keep one per worker and Close it.
type Measurer struct {
	gray, f, lap, mean, std gocv.Mat
}

// NewMeasurer allocates the scratch Mats.
func NewMeasurer() *Measurer {
	return &Measurer{gray: gocv.NewMat(), f: gocv.NewMat(), lap: gocv.NewMat(), mean: gocv.NewMat(), std: gocv.NewMat()}
}

// Measure returns the statistics of src inside roi (the whole image when roi
// is empty). src is 1-channel gray or 3-channel BGR, 8 bits; it is not
// modified or closed.
func (m *Measurer) Measure(src gocv.Mat, roi image.Rectangle) (InputStats, error) {
	if src.Empty() {
		return InputStats{}, fmt.Errorf("measure input: %w: empty image", ErrBadInput)
	}
	bounds := image.Rect(0, 0, src.Cols(), src.Rows())
	if roi.Empty() {
		roi = bounds
	}
	if !roi.In(bounds) {
		return InputStats{}, fmt.Errorf("measure input: %w: roi %v outside the %dx%d image", ErrBadInput, roi, src.Cols(), src.Rows())
	}
	region := src.Region(roi)
	defer region.Close()
	// gocv passes ConvertTo's scale as a C float, so 1/255 would be
	// inexact: convert, then divide in double by 255 (exact), as gray/255
	// does in numpy.
	switch {
	case region.Type() == gocv.MatTypeCV8UC1:
		region.ConvertTo(&m.f, gocv.MatTypeCV64F)
	case region.Type() == gocv.MatTypeCV8UC3:
		gocv.CvtColor(region, &m.gray, gocv.ColorBGRToGray)
		m.gray.ConvertTo(&m.f, gocv.MatTypeCV64F)
	default:
		return InputStats{}, fmt.Errorf("measure input: %w: want an 8-bit gray or BGR image, got Mat type %v", ErrBadInput, region.Type())
	}
	m.f.DivideFloat(255)
	gocv.MeanStdDev(m.f, &m.mean, &m.std)
	s := InputStats{Brightness: m.mean.GetDoubleAt(0, 0), Contrast: m.std.GetDoubleAt(0, 0)}
	gocv.Laplacian(m.f, &m.lap, gocv.MatTypeCV64F, 1, 1, 0, gocv.BorderReflect101)
	gocv.MeanStdDev(m.lap, &m.mean, &m.std)
	sd := m.std.GetDoubleAt(0, 0)
	s.Sharpness = sd * sd
	return s, nil
}

// Close frees the scratch Mats.
func (m *Measurer) Close() error {
	for _, mat := range []*gocv.Mat{&m.gray, &m.f, &m.lap, &m.mean, &m.std} {
		mat.Close()
	}
	return nil
}
