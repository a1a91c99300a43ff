package camera

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// clipROI intersects the region of interest with a w x h frame. It reports
// false when nothing of the region lies inside the frame.
func clipROI(r Rect, w, h int) (image.Rectangle, bool) {
	rr := image.Rect(r.X, r.Y, r.X+r.W, r.Y+r.H).Intersect(image.Rect(0, 0, w, h))
	return rr, !rr.Empty()
}

// rotateFlag maps clockwise degrees to OpenCV's flag; ok is false for 0.
func rotateFlag(deg int) (gocv.RotateFlag, bool) {
	switch deg {
	case 90:
		return gocv.Rotate90Clockwise, true
	case 180:
		return gocv.Rotate180Clockwise, true
	case 270:
		return gocv.Rotate90CounterClockwise, true
	}
	return 0, false
}

// Transform applies a camera's region of interest and rotation to f's
// image and mask, in place (crop first, in source pixels, then rotate
// clockwise). The old Mats are released. An ROI that lies partly outside
// the frame is clipped to it; one wholly outside is an error wrapping
// ErrDecode, and f is left unchanged.
func Transform(f *Frame, roi *Rect, rotate int) error {
	if !f.HasImage() || (roi == nil && rotate == 0) {
		return nil
	}
	var rr image.Rectangle
	if roi != nil {
		var ok bool
		if rr, ok = clipROI(*roi, f.Mat.Cols(), f.Mat.Rows()); !ok {
			return fmt.Errorf("roi %+v lies outside the %dx%d frame: %w", *roi, f.Mat.Cols(), f.Mat.Rows(), ErrDecode)
		}
	}
	f.Mat = transformMat(f.Mat, roi != nil, rr, rotate)
	if f.Mask.Ptr() != nil && !f.Mask.Empty() && f.Mask.Rows() >= rr.Max.Y && f.Mask.Cols() >= rr.Max.X {
		f.Mask = transformMat(f.Mask, roi != nil, rr, rotate)
	}
	return nil
}

// transformMat consumes src and returns a new Mat that owns its pixels.
func transformMat(src gocv.Mat, crop bool, rr image.Rectangle, rotate int) gocv.Mat {
	if crop && rr != image.Rect(0, 0, src.Cols(), src.Rows()) {
		view := src.Region(rr)
		c := view.Clone()
		view.Close()
		src.Close()
		src = c
	}
	if flag, ok := rotateFlag(rotate); ok {
		dst := gocv.NewMat()
		gocv.Rotate(src, &dst, flag)
		src.Close()
		src = dst
	}
	return src
}
