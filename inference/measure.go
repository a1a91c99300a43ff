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

// Measurer computes InputStats of a whole frame, for models whose reference
// is of the frame (Reference.Measured "frame", packages written before the
// engine measured the model input; see doc.go): on the gray (BT.601) ROI
// image scaled to [0,1],
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
	// The statistics of gray/255 are those of gray divided by 255, and the
	// Laplacian is linear, so everything is computed on the 8-bit image
	// (a 16-bit Laplacian: the 4-neighbour kernel stays within ±1020) and
	// scaled in double at the end: the same numbers as numpy on gray/255,
	// without converting the frame to float64 first.
	img := region
	switch {
	case region.Type() == gocv.MatTypeCV8UC1:
	case region.Type() == gocv.MatTypeCV8UC3:
		gocv.CvtColor(region, &m.gray, gocv.ColorBGRToGray)
		img = m.gray
	default:
		return InputStats{}, fmt.Errorf("measure input: %w: want an 8-bit gray or BGR image, got Mat type %v", ErrBadInput, region.Type())
	}
	gocv.MeanStdDev(img, &m.mean, &m.std)
	s := InputStats{Brightness: m.mean.GetDoubleAt(0, 0) / 255, Contrast: m.std.GetDoubleAt(0, 0) / 255}
	gocv.Laplacian(img, &m.lap, gocv.MatTypeCV16S, 1, 1, 0, gocv.BorderReflect101|gocv.BorderIsolated)
	gocv.MeanStdDev(m.lap, &m.mean, &m.std)
	sd := m.std.GetDoubleAt(0, 0) / 255
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
