package inference

import (
	"image"
	"math"
)

// Windows is the manifest's input.windows: besides the whole ROI, the
// engine scores square windows of the ROI's short side along its long
// side, each preprocessed like a whole ROI, and the part is decided on the
// view with the lowest P(good). A thin defect along an elongated part keeps
// the pixels the whole view squeezes away (a 616x252 photo's 12-pixel
// break is 3 pixels wide at 160x160, 8 in a window). Needs a square input
// and a classify or anomaly model.
type Windows struct {
	// Overlap is the least overlap of neighbouring windows, a fraction of
	// the side in [0, 1); the windows are spread evenly, the first and the
	// last flush with the ROI's ends.
	Overlap float64 `json:"overlap"`
	// MinAspect: a ROI whose long side is under MinAspect times its short
	// one gets no windows (the whole view shows it well enough); >= 1.
	MinAspect float64 `json:"min_aspect"`
}

// Of returns the windows of roi in source-image pixels: none when roi is
// empty, square or nearly square (see MinAspect), else n >= 2 squares of roi's short
// side, n the fewest that overlap by at least Overlap. It is
// scripts/train/lsdata.py's windows, so training and serving cut the same
// windows (pure).
func (w *Windows) Of(roi image.Rectangle) []image.Rectangle {
	if w == nil {
		return nil
	}
	dx, dy := roi.Dx(), roi.Dy()
	s, long := min(dx, dy), max(dx, dy)
	if s < 1 || long == s || float64(long) < w.MinAspect*float64(s) {
		return nil
	}
	n := int(math.Ceil(float64(long-s)/(float64(s)*(1-w.Overlap))-1e-9)) + 1
	out := make([]image.Rectangle, n)
	for k := range n {
		o := int(math.Round(float64(k) * float64(long-s) / float64(n-1)))
		if dx >= dy {
			out[k] = image.Rect(roi.Min.X+o, roi.Min.Y, roi.Min.X+o+s, roi.Min.Y+s)
		} else {
			out[k] = image.Rect(roi.Min.X, roi.Min.Y+o, roi.Min.X+s, roi.Min.Y+o+s)
		}
	}
	return out
}
