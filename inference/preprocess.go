package inference

import (
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"
)

// Preprocess is the preprocessing a model asks for, as plain numbers. It is
// derived from the manifest's input (see NewPreprocess) and shared by the
// gocv Preprocessor and the pure-Go Reference, which compute the same tensor
// from the same pixels (up to OpenCV's fixed-point resize rounding).
type Preprocess struct {
	Width, Height int
	Channels      string // gray, rgb, bgr
	Layout        string // nchw, nhwc
	Resize        string // stretch, letterbox, center-crop
	Interpolation string // linear, area, nearest
	PadValue      float64
	// A and B map a pixel value v (0..255) of model channel c to
	// v*A[c] + B[c]; A = scale/std, B = -mean/std.
	A, B [3]float32
}

// NewPreprocess derives the preprocessing from a manifest input.
func NewPreprocess(in Input) Preprocess {
	_, h, w, c := in.dims()
	p := Preprocess{Width: w, Height: h, Channels: in.Channels, Layout: in.Layout, Resize: in.Resize,
		Interpolation: in.Interpolation, PadValue: in.PadValue}
	for i := range 3 {
		mean, std := 0.0, 1.0
		if len(in.Mean) == 1 {
			mean = in.Mean[0]
		} else if i < len(in.Mean) {
			mean = in.Mean[i]
		}
		if len(in.Std) == 1 {
			std = in.Std[0]
		} else if i < len(in.Std) {
			std = in.Std[i]
		}
		p.A[i] = float32(in.Scale / std)
		p.B[i] = float32(-mean / std)
	}
	_ = c
	return p
}

// C is the number of model channels.
func (p *Preprocess) C() int {
	if p.Channels == ChannelsGray {
		return 1
	}
	return 3
}

// Size is the number of float32 values one image fills.
func (p *Preprocess) Size() int { return p.Width * p.Height * p.C() }

// Geometry says how the model input relates to the source image, so that
// boxes and heatmaps can be drawn on the frame.
type Geometry struct {
	ROI image.Rectangle // the part of the source image used
	// ResizedW and ResizedH are the ROI's size after the resize; OffX and
	// OffY where its top-left corner lands in the model input (positive:
	// letterbox padding; negative: cropped away).
	ResizedW, ResizedH int
	OffX, OffY         int
}

// Geometry computes the resize and placement of a roi for this spec.
func (p *Preprocess) Geometry(roi image.Rectangle) Geometry {
	g := Geometry{ROI: roi, ResizedW: p.Width, ResizedH: p.Height}
	w, h := float64(roi.Dx()), float64(roi.Dy())
	W, H := float64(p.Width), float64(p.Height)
	switch p.Resize {
	case ResizeLetterbox:
		r := math.Min(W/w, H/h)
		g.ResizedW, g.ResizedH = max(1, int(math.Round(w*r))), max(1, int(math.Round(h*r)))
		// Ultralytics' LetterBox: round(d/2 - 0.1) on the top-left.
		g.OffX = int(math.Round(float64(p.Width-g.ResizedW)/2 - 0.1))
		g.OffY = int(math.Round(float64(p.Height-g.ResizedH)/2 - 0.1))
	case ResizeCenterCrop:
		r := math.Max(W/w, H/h)
		g.ResizedW, g.ResizedH = max(p.Width, int(math.Round(w*r))), max(p.Height, int(math.Round(h*r)))
		g.OffX = -(g.ResizedW - p.Width) / 2
		g.OffY = -(g.ResizedH - p.Height) / 2
	}
	return g
}

// ToSource maps a point in model-input pixels to source-image pixels.
func (g Geometry) ToSource(x, y float64) (float64, float64) {
	sx := float64(g.ROI.Dx()) / float64(g.ResizedW)
	sy := float64(g.ROI.Dy()) / float64(g.ResizedH)
	return float64(g.ROI.Min.X) + (x-float64(g.OffX))*sx, float64(g.ROI.Min.Y) + (y-float64(g.OffY))*sy
}

// writeTensor fills dst (Size() values) from pix, the resized image of
// g.ResizedW x g.ResizedH with srcCh interleaved channels in BGR(A) order
// (or 1 gray channel) and rows stride bytes apart. It is the one place the
// pixel-to-float arithmetic happens, for both the gocv and pure-Go paths.
func (p *Preprocess) writeTensor(dst []float32, pix []uint8, stride, srcCh int, g Geometry) {
	C, W, H := p.C(), p.Width, p.Height
	var idx [3]int // source channel of each model channel
	switch {
	case srcCh == 1:
		idx = [3]int{0, 0, 0}
	case p.Channels == ChannelsRGB:
		idx = [3]int{2, 1, 0}
	default: // bgr, or gray already converted (srcCh == 1)
		idx = [3]int{0, 1, 2}
	}
	var pad [3]float32
	for c := range C {
		pad[c] = float32(p.PadValue)*p.A[c] + p.B[c]
	}
	plane := W * H
	nhwc := p.Layout == LayoutNHWC
	for y := range H {
		sy := y - g.OffY
		rowIn := sy >= 0 && sy < g.ResizedH
		for x := range W {
			sx := x - g.OffX
			in := rowIn && sx >= 0 && sx < g.ResizedW
			o := y*W + x
			if nhwc {
				o *= C
			}
			for c := range C {
				v := pad[c]
				if in {
					v = float32(pix[sy*stride+sx*srcCh+idx[c]])*p.A[c] + p.B[c]
				}
				if nhwc {
					dst[o+c] = v
				} else {
					dst[c*plane+o] = v
				}
			}
		}
	}
}

func interpFlag(s string) gocv.InterpolationFlags {
	switch s {
	case InterpArea:
		return gocv.InterpolationArea
	case InterpNearest:
		return gocv.InterpolationNearestNeighbor
	}
	return gocv.InterpolationLinear
}

// Preprocessor turns a gocv image into the model's float32 input with
// OpenCV: ROI, gray conversion, resize, then channel order, normalisation
// and layout in one pass. Its intermediate Mats are allocated on the first
// frame and reused, so steady-state frames allocate nothing. It is not safe
// for concurrent use (the engine gives each worker one). Close it.
type Preprocessor struct {
	spec             Preprocess
	gray, resized, c gocv.Mat
}

// NewPreprocessor returns a Preprocessor for spec.
func NewPreprocessor(spec Preprocess) *Preprocessor {
	return &Preprocessor{spec: spec, gray: gocv.NewMat(), resized: gocv.NewMat(), c: gocv.NewMat()}
}

// Spec is the preprocessing this Preprocessor applies.
func (pp *Preprocessor) Spec() Preprocess { return pp.spec }

// Run preprocesses roi of src (the whole image when roi is empty) into dst,
// which must hold Spec().Size() values. src is 8-bit gray, BGR or BGRA, as
// gocv decodes and captures; it is only read, and the caller keeps owning
// it. Errors wrap ErrBadInput.
func (pp *Preprocessor) Run(src gocv.Mat, roi image.Rectangle, dst []float32) (Geometry, error) {
	if src.Ptr() == nil {
		return Geometry{}, fmt.Errorf("preprocess: %w: no image (a zero gocv.Mat)", ErrBadInput)
	}
	if src.Empty() {
		return Geometry{}, fmt.Errorf("preprocess: %w: empty image", ErrBadInput)
	}
	ch := src.Channels()
	if src.Type() != gocv.MatTypeCV8UC1 && src.Type() != gocv.MatTypeCV8UC3 && src.Type() != gocv.MatTypeCV8UC4 {
		return Geometry{}, fmt.Errorf("preprocess: %w: image type %v; want 8-bit gray, BGR or BGRA", ErrBadInput, src.Type())
	}
	full := image.Rect(0, 0, src.Cols(), src.Rows())
	if roi.Empty() {
		roi = full
	} else if !roi.In(full) {
		return Geometry{}, fmt.Errorf("preprocess: %w: roi %v outside the %dx%d image", ErrBadInput, roi, src.Cols(), src.Rows())
	}
	if len(dst) != pp.spec.Size() {
		return Geometry{}, fmt.Errorf("preprocess: %w: tensor has %d values, want %d", ErrShape, len(dst), pp.spec.Size())
	}
	cur := src
	if roi != full {
		view := src.Region(roi)
		defer view.Close()
		cur = view
	}
	if pp.spec.Channels == ChannelsGray && ch > 1 {
		code := gocv.ColorBGRToGray
		if ch == 4 {
			code = gocv.ColorBGRAToGray
		}
		gocv.CvtColor(cur, &pp.gray, code)
		cur, ch = pp.gray, 1
	}
	g := pp.spec.Geometry(roi)
	if g.ResizedW != roi.Dx() || g.ResizedH != roi.Dy() {
		gocv.Resize(cur, &pp.resized, image.Pt(g.ResizedW, g.ResizedH), 0, 0, interpFlag(pp.spec.Interpolation))
		cur = pp.resized
	}
	if !cur.IsContinuous() {
		cur.CopyTo(&pp.c)
		cur = pp.c
	}
	pix, err := cur.DataPtrUint8()
	if err != nil {
		return Geometry{}, fmt.Errorf("preprocess: %w", err)
	}
	pp.spec.writeTensor(dst, pix, cur.Cols()*ch, ch, g)
	return g, nil
}

// Close releases the intermediate Mats.
func (pp *Preprocessor) Close() error {
	pp.gray.Close()
	pp.resized.Close()
	pp.c.Close()
	return nil
}
