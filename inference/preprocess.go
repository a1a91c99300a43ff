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
	Orient        string // none, landscape
	PadValue      float64
	// A and B map a pixel value v (0..255) of model channel c to
	// v*A[c] + B[c]; A = scale/std, B = -mean/std.
	A, B [3]float32
}

// NewPreprocess derives the preprocessing from a manifest input.
func NewPreprocess(in Input) Preprocess {
	_, h, w, c := in.dims()
	p := Preprocess{Width: w, Height: h, Channels: in.Channels, Layout: in.Layout, Resize: in.Resize,
		Interpolation: in.Interpolation, Orient: in.Orient, PadValue: in.PadValue}
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
	// Rotated: the ROI was turned a quarter clockwise (Orient landscape on
	// a ROI taller than wide); ResizedW x ResizedH is its size after the
	// resize and the turn, as it lies in the model input.
	Rotated bool
}

// Geometry computes the resize and placement of a roi for this spec.
func (p *Preprocess) Geometry(roi image.Rectangle) Geometry {
	g := Geometry{ROI: roi, ResizedW: p.Width, ResizedH: p.Height,
		Rotated: p.Orient == OrientLandscape && roi.Dy() > roi.Dx()}
	w, h := float64(roi.Dx()), float64(roi.Dy())
	if g.Rotated {
		w, h = h, w
	}
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
	// u, v: the point across the resized ROI as it lies in the input, 0..1.
	u := (x - float64(g.OffX)) / float64(g.ResizedW)
	v := (y - float64(g.OffY)) / float64(g.ResizedH)
	if g.Rotated {
		// A quarter turn clockwise took the source's (u, v) to (1-v, u).
		u, v = v, 1-u
	}
	return float64(g.ROI.Min.X) + u*float64(g.ROI.Dx()), float64(g.ROI.Min.Y) + v*float64(g.ROI.Dy())
}

// ToInput maps a point in source-image pixels to model-input pixels: the
// inverse of ToSource.
func (g Geometry) ToInput(x, y float64) (float64, float64) {
	u := (x - float64(g.ROI.Min.X)) / float64(g.ROI.Dx())
	v := (y - float64(g.ROI.Min.Y)) / float64(g.ROI.Dy())
	if g.Rotated {
		u, v = 1-v, u // the quarter turn clockwise
	}
	return float64(g.OffX) + u*float64(g.ResizedW), float64(g.OffY) + v*float64(g.ResizedH)
}

// resizeTo is the size the ROI is resized to before the turn, if any.
func (g Geometry) resizeTo() (w, h int) {
	if g.Rotated {
		return g.ResizedH, g.ResizedW
	}
	return g.ResizedW, g.ResizedH
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
	// Every pixel value maps through v*A[c] + B[c]: a table of the 256
	// results per channel computes exactly the same float32s as the
	// arithmetic, at a fraction of the cost.
	var lut [3][256]float32
	var pad [3]float32
	for c := range C {
		for v := range 256 {
			lut[c][v] = float32(v)*p.A[c] + p.B[c]
		}
		pad[c] = float32(p.PadValue)*p.A[c] + p.B[c]
	}
	plane := W * H
	nhwc := p.Layout == LayoutNHWC
	// The columns of a row that come from the image: [x0, x1).
	x0, x1 := max(0, g.OffX), min(W, g.OffX+g.ResizedW)
	if x1 < x0 {
		x1 = x0
	}
	for y := range H {
		sy := y - g.OffY
		if sy < 0 || sy >= g.ResizedH || x0 == x1 {
			for x := range W {
				for c := range C {
					if nhwc {
						dst[(y*W+x)*C+c] = pad[c]
					} else {
						dst[c*plane+y*W+x] = pad[c]
					}
				}
			}
			continue
		}
		src := pix[sy*stride+(x0-g.OffX)*srcCh:]
		src = src[:(x1-x0)*srcCh]
		if !nhwc {
			for c := range C {
				row := dst[c*plane+y*W : c*plane+(y+1)*W]
				for x := range x0 {
					row[x] = pad[c]
				}
				for x := x1; x < W; x++ {
					row[x] = pad[c]
				}
				t := &lut[c]
				out := row[x0:x1]
				if srcCh == 1 {
					for i, v := range src {
						out[i] = t[v]
					}
					continue
				}
				k := idx[c]
				for i := range out {
					out[i] = t[src[i*srcCh+k]]
				}
			}
			continue
		}
		row := dst[y*W*C : (y+1)*W*C]
		for x := range W {
			in := x >= x0 && x < x1
			for c := range C {
				v := pad[c]
				if in {
					v = lut[c][src[(x-x0)*srcCh+idx[c]]]
				}
				row[x*C+c] = v
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
// OpenCV: ROI, gray conversion, resize (and the quarter turn of orient
// landscape), then channel order, normalisation and layout in one pass. Its intermediate Mats are allocated on the first
// frame and reused, so steady-state frames allocate nothing. It is not safe
// for concurrent use (the engine gives each worker one). Close it.
type Preprocessor struct {
	spec                         Preprocess
	gray, resized, rot, c, sgray gocv.Mat
}

// NewPreprocessor returns a Preprocessor for spec.
func NewPreprocessor(spec Preprocess) *Preprocessor {
	return &Preprocessor{spec: spec, gray: gocv.NewMat(), resized: gocv.NewMat(), rot: gocv.NewMat(), c: gocv.NewMat(), sgray: gocv.NewMat()}
}

// Spec is the preprocessing this Preprocessor applies.
func (pp *Preprocessor) Spec() Preprocess { return pp.spec }

// Run preprocesses roi of src (the whole image when roi is empty) into dst,
// which must hold Spec().Size() values. src is 8-bit gray, BGR or BGRA, as
// gocv decodes and captures; it is only read, and the caller keeps owning
// it. Errors wrap ErrBadInput.
func (pp *Preprocessor) Run(src gocv.Mat, roi image.Rectangle, dst []float32) (Geometry, error) {
	g, _, err := pp.run(src, roi, dst, false)
	return g, err
}

// RunMeasured is Run that also measures the InputStats of the image as the
// model sees it: gray, resized to the model input, before any padding
// (Reference.Measured "input"; a color model's resized image is converted
// to gray for it). On the model's small input it costs a few tens of
// microseconds, and it reads pixels the resize has just touched.
func (pp *Preprocessor) RunMeasured(src gocv.Mat, roi image.Rectangle, dst []float32) (Geometry, InputStats, error) {
	return pp.run(src, roi, dst, true)
}

func (pp *Preprocessor) run(src gocv.Mat, roi image.Rectangle, dst []float32, measure bool) (Geometry, InputStats, error) {
	if src.Ptr() == nil {
		return Geometry{}, InputStats{}, fmt.Errorf("preprocess: %w: no image (a zero gocv.Mat)", ErrBadInput)
	}
	if src.Empty() {
		return Geometry{}, InputStats{}, fmt.Errorf("preprocess: %w: empty image", ErrBadInput)
	}
	ch := src.Channels()
	if src.Type() != gocv.MatTypeCV8UC1 && src.Type() != gocv.MatTypeCV8UC3 && src.Type() != gocv.MatTypeCV8UC4 {
		return Geometry{}, InputStats{}, fmt.Errorf("preprocess: %w: image type %v; want 8-bit gray, BGR or BGRA", ErrBadInput, src.Type())
	}
	full := image.Rect(0, 0, src.Cols(), src.Rows())
	if roi.Empty() {
		roi = full
	} else if !roi.In(full) {
		return Geometry{}, InputStats{}, fmt.Errorf("preprocess: %w: roi %v outside the %dx%d image", ErrBadInput, roi, src.Cols(), src.Rows())
	}
	if len(dst) != pp.spec.Size() {
		return Geometry{}, InputStats{}, fmt.Errorf("preprocess: %w: tensor has %d values, want %d", ErrShape, len(dst), pp.spec.Size())
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
	if rw, rh := g.resizeTo(); rw != roi.Dx() || rh != roi.Dy() {
		gocv.Resize(cur, &pp.resized, image.Pt(rw, rh), 0, 0, interpFlag(pp.spec.Interpolation))
		cur = pp.resized
	}
	if g.Rotated {
		gocv.Rotate(cur, &pp.rot, gocv.Rotate90Clockwise)
		cur = pp.rot
	}
	if !cur.IsContinuous() {
		cur.CopyTo(&pp.c)
		cur = pp.c
	}
	pix, err := cur.DataPtrUint8()
	if err != nil {
		return Geometry{}, InputStats{}, fmt.Errorf("preprocess: %w", err)
	}
	pp.spec.writeTensor(dst, pix, cur.Cols()*ch, ch, g)
	if !measure {
		return g, InputStats{}, nil
	}
	if ch > 1 {
		code := gocv.ColorBGRToGray
		if ch == 4 {
			code = gocv.ColorBGRAToGray
		}
		gocv.CvtColor(cur, &pp.sgray, code)
		if pix, err = pp.sgray.DataPtrUint8(); err != nil {
			return Geometry{}, InputStats{}, fmt.Errorf("preprocess: measure: %w", err)
		}
	}
	return g, grayStats(pix, cur.Cols(), cur.Cols(), cur.Rows()), nil
}

// Close releases the intermediate Mats.
func (pp *Preprocessor) Close() error {
	pp.gray.Close()
	pp.resized.Close()
	pp.rot.Close()
	pp.c.Close()
	pp.sgray.Close()
	return nil
}
