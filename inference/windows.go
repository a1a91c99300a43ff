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
// break is 3 pixels wide at 160x160, 8 in a window). Corners adds the
// ROI's four corners, squares of a fraction of its short side, so a small
// chip at a corner is seen magnified (a 215x283 photo's corner break, 14
// pixels wide, is 10 pixels at 160x160 and 21 in a corner of half the
// short side). Needs a square input and a classify or anomaly model.
type Windows struct {
	// Overlap is the least overlap of neighbouring windows, a fraction of
	// the side in [0, 1); the windows are spread evenly, the first and the
	// last flush with the ROI's ends.
	Overlap float64 `json:"overlap"`
	// MinAspect: a ROI whose long side is under MinAspect times its short
	// one gets no windows along it (the whole view shows it well enough);
	// >= 1, or 0 for no windows along the long side at all (corners only).
	MinAspect float64 `json:"min_aspect"`
	// Corners, in (0, 1): every ROI is also scored in its four corners,
	// squares of Corners times its short side; 0: no corner views.
	Corners float64 `json:"corners,omitempty"`
}

// Of returns the windows of roi in source-image pixels: first the
// windows along its long side, none when roi is empty, square or nearly
// square (see MinAspect), else n >= 2 squares of roi's short side, n the
// fewest that overlap by at least Overlap; then, with Corners, its four
// corners (top left, top right, bottom left, bottom right). It is
// scripts/train/lsdata.py's windows, so training and serving cut the same
// windows (pure).
func (w *Windows) Of(roi image.Rectangle) []image.Rectangle {
	if w == nil {
		return nil
	}
	dx, dy := roi.Dx(), roi.Dy()
	s, long := min(dx, dy), max(dx, dy)
	if s < 1 {
		return nil
	}
	var out []image.Rectangle
	if w.MinAspect >= 1 && long != s && float64(long) >= w.MinAspect*float64(s) {
		n := int(math.Ceil(float64(long-s)/(float64(s)*(1-w.Overlap))-1e-9)) + 1
		for k := range n {
			o := int(math.Round(float64(k) * float64(long-s) / float64(n-1)))
			if dx >= dy {
				out = append(out, image.Rect(roi.Min.X+o, roi.Min.Y, roi.Min.X+o+s, roi.Min.Y+s))
			} else {
				out = append(out, image.Rect(roi.Min.X, roi.Min.Y+o, roi.Min.X+s, roi.Min.Y+o+s))
			}
		}
	}
	if w.Corners > 0 {
		c := max(1, int(math.Round(w.Corners*float64(s))))
		for _, o := range []image.Point{{0, 0}, {dx - c, 0}, {0, dy - c}, {dx - c, dy - c}} {
			p := roi.Min.Add(o)
			out = append(out, image.Rect(p.X, p.Y, p.X+c, p.Y+c))
		}
	}
	return out
}
