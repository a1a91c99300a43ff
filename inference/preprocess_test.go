package inference

import (
	"errors"
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"gocv.io/x/gocv"
)

// testImage makes a seeded w x h image with ch channels: gradients, a
// bright blob and noise, so that resizing and channel order matter.
func testImage(t testing.TB, w, h, ch int, seed uint64) (gocv.Mat, Image) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	pix := make([]uint8, w*h*ch)
	for y := range h {
		for x := range w {
			for c := range ch {
				v := 40 + 120*x/w + 60*y/h + 25*c + r.IntN(20)
				if (x-w/3)*(x-w/3)+(y-h/2)*(y-h/2) < w*h/40 {
					v += 60
				}
				pix[(y*w+x)*ch+c] = uint8(min(v, 255))
			}
		}
	}
	mt := map[int]gocv.MatType{1: gocv.MatTypeCV8UC1, 3: gocv.MatTypeCV8UC3, 4: gocv.MatTypeCV8UC4}[ch]
	m, err := gocv.NewMatFromBytes(h, w, mt, pix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, Image{W: w, H: h, Ch: ch, Stride: w * ch, Pix: pix}
}

func TestGeometry(t *testing.T) {
	tests := []struct {
		name       string
		resize     string
		w, h       int // model input
		roi        image.Rectangle
		rw, rh     int
		offX, offY int
		mx, my     float64 // model point
		sx, sy     float64 // its source point
	}{
		{"stretch", ResizeStretch, 64, 64, image.Rect(0, 0, 128, 64), 64, 64, 0, 0, 32, 32, 64, 32},
		{"stretch roi", ResizeStretch, 64, 64, image.Rect(10, 20, 74, 84), 64, 64, 0, 0, 0, 0, 10, 20},
		{"letterbox wide", ResizeLetterbox, 64, 64, image.Rect(0, 0, 128, 64), 64, 32, 0, 16, 32, 16, 64, 0},
		{"letterbox tall", ResizeLetterbox, 640, 640, image.Rect(0, 0, 480, 640), 480, 640, 80, 0, 80, 0, 0, 0},
		{"letterbox odd", ResizeLetterbox, 64, 64, image.Rect(0, 0, 100, 33), 64, 21, 0, 21, 0, 21, 0, 0},
		{"center-crop wide", ResizeCenterCrop, 64, 64, image.Rect(0, 0, 128, 64), 128, 64, -32, 0, 0, 0, 32, 0},
		{"center-crop tall", ResizeCenterCrop, 64, 64, image.Rect(0, 0, 50, 100), 64, 128, 0, -32, 32, 32, 25, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Preprocess{Width: tt.w, Height: tt.h, Resize: tt.resize}
			g := p.Geometry(tt.roi)
			if g.ResizedW != tt.rw || g.ResizedH != tt.rh || g.OffX != tt.offX || g.OffY != tt.offY {
				t.Fatalf("geometry %+v, want resized %dx%d offset %d,%d", g, tt.rw, tt.rh, tt.offX, tt.offY)
			}
			if x, y := g.ToSource(tt.mx, tt.my); math.Abs(x-tt.sx) > 1e-9 || math.Abs(y-tt.sy) > 1e-9 {
				t.Errorf("ToSource(%v,%v) = %v,%v, want %v,%v", tt.mx, tt.my, x, y, tt.sx, tt.sy)
			}
			if x, y := g.ToInput(tt.sx, tt.sy); math.Abs(x-tt.mx) > 1e-9 || math.Abs(y-tt.my) > 1e-9 {
				t.Errorf("ToInput(%v,%v) = %v,%v, want %v,%v", tt.sx, tt.sy, x, y, tt.mx, tt.my)
			}
		})
	}
}

// TestGeometryRotated: Orient landscape turns a portrait ROI a quarter
// clockwise; the corners of the input map back to the source's, and
// ToInput maps them forward again.
func TestGeometryRotated(t *testing.T) {
	type pt struct{ mx, my, sx, sy float64 }
	tests := []struct {
		name    string
		resize  string
		roi     image.Rectangle
		rotated bool
		rw, rh  int
		offX    int
		pts     []pt
	}{
		{"portrait", ResizeStretch, image.Rect(0, 0, 40, 100), true, 64, 32, 0,
			// the input's top-left is the source's bottom-left, top-right its top-left
			[]pt{{0, 0, 0, 100}, {64, 0, 0, 0}, {64, 32, 40, 0}, {0, 32, 40, 100}, {32, 16, 20, 50}}},
		{"portrait roi", ResizeStretch, image.Rect(10, 20, 50, 120), true, 64, 32, 0,
			[]pt{{0, 0, 10, 120}, {64, 0, 10, 20}, {64, 32, 50, 20}}},
		{"landscape stays", ResizeStretch, image.Rect(0, 0, 100, 40), false, 64, 32, 0,
			[]pt{{0, 0, 0, 0}, {64, 32, 100, 40}}},
		{"square stays", ResizeStretch, image.Rect(0, 0, 50, 50), false, 64, 32, 0,
			[]pt{{64, 32, 50, 50}}},
		{"letterbox portrait", ResizeLetterbox, image.Rect(0, 0, 32, 128), true, 64, 16, 0,
			[]pt{{0, 8, 0, 128}, {64, 8, 0, 0}, {64, 24, 32, 0}}},
		{"letterbox short", ResizeLetterbox, image.Rect(0, 0, 40, 50), true, 40, 32, 12,
			[]pt{{12, 0, 0, 50}, {52, 0, 0, 0}, {52, 32, 40, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Preprocess{Width: 64, Height: 32, Resize: tt.resize, Orient: OrientLandscape}
			g := p.Geometry(tt.roi)
			if g.Rotated != tt.rotated || g.ResizedW != tt.rw || g.ResizedH != tt.rh || g.OffX != tt.offX {
				t.Fatalf("geometry %+v, want rotated %v resized %dx%d offX %d", g, tt.rotated, tt.rw, tt.rh, tt.offX)
			}
			for _, q := range tt.pts {
				if x, y := g.ToSource(q.mx, q.my); math.Abs(x-q.sx) > 1e-9 || math.Abs(y-q.sy) > 1e-9 {
					t.Errorf("ToSource(%v,%v) = %v,%v, want %v,%v", q.mx, q.my, x, y, q.sx, q.sy)
				}
				if x, y := g.ToInput(q.sx, q.sy); math.Abs(x-q.mx) > 1e-9 || math.Abs(y-q.my) > 1e-9 {
					t.Errorf("ToInput(%v,%v) = %v,%v, want %v,%v", q.sx, q.sy, x, y, q.mx, q.my)
				}
			}
		})
	}
}

// TestPreprocessOrient checks the quarter turn on a tiny gray image: the
// 2x3 source [[1 2] [3 4] [5 6]] goes into a 3x2 input as [[5 3 1] [6 4 2]].
func TestPreprocessOrient(t *testing.T) {
	pix := []uint8{1, 2, 3, 4, 5, 6}
	mat, err := gocv.NewMatFromBytes(3, 2, gocv.MatTypeCV8UC1, pix)
	if err != nil {
		t.Fatal(err)
	}
	defer mat.Close()
	p := spec(3, 2, ChannelsGray, LayoutNCHW, ResizeStretch, InterpLinear, Input{Scale: 1, Orient: OrientLandscape})
	pp := NewPreprocessor(p)
	defer pp.Close()
	got := make([]float32, p.Size())
	g, err := pp.Run(mat, image.Rectangle{}, got)
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]float32, p.Size())
	if _, err := p.Reference(Image{W: 2, H: 3, Ch: 1, Stride: 2, Pix: pix}, image.Rectangle{}, ref); err != nil {
		t.Fatal(err)
	}
	want := []float32{5, 3, 1, 6, 4, 2}
	for i := range want {
		if got[i] != want[i] || ref[i] != want[i] {
			t.Fatalf("gocv %v, reference %v, want %v (geometry %+v)", got, ref, want, g)
		}
	}
	if !g.Rotated {
		t.Errorf("geometry %+v: not marked rotated", g)
	}
}

var imagenet = Input{Scale: 1.0 / 255, Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}}

func spec(w, h int, channels, layout, resize, interp string, base Input) Preprocess {
	in := base
	in.Channels, in.Layout, in.Resize, in.Interpolation = channels, layout, resize, interp
	c := int64(3)
	if channels == ChannelsGray {
		c = 1
	}
	in.Shape = []int64{1, c, int64(h), int64(w)}
	if layout == LayoutNHWC {
		in.Shape = []int64{1, int64(h), int64(w), c}
	}
	if in.Scale == 0 {
		in.Scale = 1.0 / 255
	}
	return NewPreprocess(in)
}

// TestPreprocessMatchesReference runs the gocv path and the pure-Go
// reference on the same pixels: they must agree within one gray level
// (OpenCV's fixed-point resize) and exactly where no resize happens.
func TestPreprocessMatchesReference(t *testing.T) {
	tests := []struct {
		name    string
		w, h    int // source
		ch      int
		roi     image.Rectangle
		spec    Preprocess
		maxDiff float64 // in gray levels
	}{
		{"rgb stretch down", 200, 150, 3, image.Rectangle{}, spec(64, 64, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, imagenet), 0},
		{"bgr stretch up", 40, 30, 3, image.Rectangle{}, spec(64, 48, ChannelsBGR, LayoutNCHW, ResizeStretch, InterpLinear, Input{}), 0},
		{"gray from bgr", 128, 96, 3, image.Rectangle{}, spec(64, 64, ChannelsGray, LayoutNCHW, ResizeStretch, InterpLinear, Input{Scale: 1.0 / 255, Mean: []float64{0.5}, Std: []float64{0.25}}), 0},
		{"gray no resize", 64, 64, 3, image.Rectangle{}, spec(64, 64, ChannelsGray, LayoutNCHW, ResizeStretch, InterpLinear, Input{}), 0},
		{"bgr stretch up int", 32, 32, 3, image.Rectangle{}, spec(64, 64, ChannelsBGR, LayoutNCHW, ResizeStretch, InterpLinear, Input{}), 0},
		{"bgr down 1.5", 96, 96, 3, image.Rectangle{}, spec(64, 64, ChannelsBGR, LayoutNCHW, ResizeStretch, InterpLinear, Input{}), 0},
		{"gray source to rgb", 90, 90, 1, image.Rectangle{}, spec(32, 32, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, Input{}), 0},
		{"bgra source nhwc", 80, 60, 4, image.Rectangle{}, spec(40, 30, ChannelsRGB, LayoutNHWC, ResizeStretch, InterpLinear, Input{}), 0},
		{"letterbox pad 114", 160, 90, 3, image.Rectangle{}, spec(64, 64, ChannelsRGB, LayoutNCHW, ResizeLetterbox, InterpLinear, Input{Scale: 1.0 / 255, PadValue: 114}), 0},
		{"center-crop", 90, 160, 3, image.Rectangle{}, spec(64, 64, ChannelsRGB, LayoutNCHW, ResizeCenterCrop, InterpLinear, imagenet), 0},
		{"roi no resize", 200, 150, 3, image.Rect(20, 30, 84, 94), spec(64, 64, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, imagenet), 0},
		{"roi resize", 200, 150, 3, image.Rect(13, 7, 190, 140), spec(64, 64, ChannelsBGR, LayoutNCHW, ResizeStretch, InterpLinear, imagenet), 0},
		{"area by 2", 128, 128, 3, image.Rectangle{}, spec(64, 64, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpArea, Input{}), 0},
		{"nearest", 100, 100, 3, image.Rectangle{}, spec(64, 64, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpNearest, Input{}), 0},
		{"orient gray portrait", 90, 200, 3, image.Rectangle{}, spec(96, 48, ChannelsGray, LayoutNCHW, ResizeStretch, InterpLinear, Input{Scale: 1.0 / 255, Orient: OrientLandscape}), 0},
		{"orient bgr nhwc", 60, 150, 3, image.Rectangle{}, spec(64, 32, ChannelsBGR, LayoutNHWC, ResizeStretch, InterpLinear, Input{Orient: OrientLandscape}), 0},
		{"orient no resize", 32, 64, 3, image.Rectangle{}, spec(64, 32, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, Input{Orient: OrientLandscape}), 0},
		{"orient roi letterbox", 200, 150, 3, image.Rect(20, 10, 80, 140), spec(64, 32, ChannelsGray, LayoutNCHW, ResizeLetterbox, InterpLinear, Input{Scale: 1.0 / 255, PadValue: 114, Orient: OrientLandscape}), 0},
		{"orient landscape kept", 200, 90, 3, image.Rectangle{}, spec(96, 48, ChannelsGray, LayoutNCHW, ResizeStretch, InterpLinear, Input{Scale: 1.0 / 255, Orient: OrientLandscape}), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mat, img := testImage(t, tt.w, tt.h, tt.ch, 7)
			pp := NewPreprocessor(tt.spec)
			defer pp.Close()
			got := make([]float32, tt.spec.Size())
			want := make([]float32, tt.spec.Size())
			g1, err := pp.Run(mat, tt.roi, got)
			if err != nil {
				t.Fatal(err)
			}
			g2, err := tt.spec.Reference(img, tt.roi, want)
			if err != nil {
				t.Fatal(err)
			}
			if g1 != g2 {
				t.Fatalf("geometry differs: gocv %+v, reference %+v", g1, g2)
			}
			// Convert the difference back to gray levels per channel.
			worst, sum := 0.0, 0.0
			plane := tt.spec.Width * tt.spec.Height
			for i := range got {
				c := i / plane
				if tt.spec.Layout == LayoutNHWC {
					c = i % tt.spec.C()
				}
				d := math.Abs(float64(got[i]-want[i])) / float64(tt.spec.A[c])
				worst = max(worst, d)
				sum += d
			}
			if worst > tt.maxDiff+1e-3 {
				t.Errorf("max difference %.3f gray levels, want <= %v (mean %.4f)", worst, tt.maxDiff, sum/float64(len(got)))
			}
			if mean := sum / float64(len(got)); mean > 0.1 {
				t.Errorf("mean difference %.4f gray levels; the paths disagree systematically", mean)
			}
		})
	}
}

// TestPreprocessValues checks the arithmetic on a constant image.
func TestPreprocessValues(t *testing.T) {
	pix := make([]uint8, 8*8*3)
	for i := 0; i < len(pix); i += 3 {
		pix[i], pix[i+1], pix[i+2] = 10, 20, 30 // B, G, R
	}
	mat, err := gocv.NewMatFromBytes(8, 8, gocv.MatTypeCV8UC3, pix)
	if err != nil {
		t.Fatal(err)
	}
	defer mat.Close()
	p := spec(4, 4, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, Input{Scale: 0.5, Mean: []float64{1, 2, 3}, Std: []float64{2, 4, 5}})
	pp := NewPreprocessor(p)
	defer pp.Close()
	dst := make([]float32, p.Size())
	if _, err := pp.Run(mat, image.Rectangle{}, dst); err != nil {
		t.Fatal(err)
	}
	want := []float32{(30*0.5 - 1) / 2, (20*0.5 - 2) / 4, (10*0.5 - 3) / 5} // R, G, B planes
	for c, w := range want {
		for i := range 16 {
			if v := dst[c*16+i]; math.Abs(float64(v-w)) > 1e-6 {
				t.Fatalf("channel %d value %d = %v, want %v", c, i, v, w)
			}
		}
	}
}

func TestPreprocessBadInput(t *testing.T) {
	p := spec(16, 16, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, Input{})
	pp := NewPreprocessor(p)
	defer pp.Close()
	dst := make([]float32, p.Size())
	empty := gocv.NewMat()
	defer empty.Close()
	float := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV32FC3)
	defer float.Close()
	ok, _ := testImage(t, 20, 20, 3, 1)
	tests := []struct {
		name string
		m    gocv.Mat
		roi  image.Rectangle
		dst  []float32
		want error
	}{
		{"empty", empty, image.Rectangle{}, dst, ErrBadInput},
		{"float image", float, image.Rectangle{}, dst, ErrBadInput},
		{"roi outside", ok, image.Rect(10, 10, 30, 30), dst, ErrBadInput},
		{"short tensor", ok, image.Rectangle{}, dst[:10], ErrShape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := pp.Run(tt.m, tt.roi, tt.dst); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := p.Reference(Image{W: 4, H: 4, Ch: 2, Stride: 8, Pix: make([]uint8, 32)}, image.Rectangle{}, dst); !errors.Is(err, ErrBadInput) {
		t.Errorf("reference with 2 channels: %v", err)
	}
}

func BenchmarkPreprocess(b *testing.B) {
	for _, bc := range []struct {
		name string
		w, h int
		spec Preprocess
	}{
		{"640x480-to-64-rgb", 640, 480, spec(64, 64, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, imagenet)},
		{"640x480-to-224-rgb-area", 640, 480, spec(224, 224, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpArea, imagenet)},
		{"1280x720-to-640-letterbox", 1280, 720, spec(640, 640, ChannelsRGB, LayoutNCHW, ResizeLetterbox, InterpLinear, Input{Scale: 1.0 / 255, PadValue: 114})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mat, _ := testImage(b, bc.w, bc.h, 3, 3)
			pp := NewPreprocessor(bc.spec)
			defer pp.Close()
			dst := make([]float32, bc.spec.Size())
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := pp.Run(mat, image.Rectangle{}, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWriteTensorMatchesArithmetic checks the table-driven tensor writer
// against the per-pixel arithmetic it replaces (v*A[c]+B[c], pad outside
// the image), bit for bit, for every layout, channel order and placement.
func TestWriteTensorMatchesArithmetic(t *testing.T) {
	tests := []struct {
		name  string
		spec  Preprocess
		srcCh int
		g     Geometry
	}{
		{"gray nchw stretch", spec(16, 12, ChannelsGray, LayoutNCHW, ResizeStretch, InterpLinear, Input{}), 1, Geometry{ResizedW: 16, ResizedH: 12}},
		{"gray letterbox pad", spec(16, 16, ChannelsGray, LayoutNCHW, ResizeLetterbox, InterpLinear, Input{PadValue: 114}), 1, Geometry{ResizedW: 16, ResizedH: 9, OffY: 3}},
		{"gray letterbox sides", spec(16, 16, ChannelsGray, LayoutNCHW, ResizeLetterbox, InterpLinear, Input{PadValue: 7}), 1, Geometry{ResizedW: 10, ResizedH: 16, OffX: 3}},
		{"rgb nchw from bgr", spec(8, 8, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, imagenet), 3, Geometry{ResizedW: 8, ResizedH: 8}},
		{"bgr nchw from bgra", spec(8, 6, ChannelsBGR, LayoutNCHW, ResizeStretch, InterpLinear, imagenet), 4, Geometry{ResizedW: 8, ResizedH: 6}},
		{"rgb nhwc letterbox", spec(8, 8, ChannelsRGB, LayoutNHWC, ResizeLetterbox, InterpLinear, Input{PadValue: 114}), 3, Geometry{ResizedW: 8, ResizedH: 5, OffY: 1}},
		{"rgb from gray", spec(6, 6, ChannelsRGB, LayoutNCHW, ResizeStretch, InterpLinear, imagenet), 1, Geometry{ResizedW: 6, ResizedH: 6}},
		{"center-crop", spec(8, 8, ChannelsRGB, LayoutNCHW, ResizeCenterCrop, InterpLinear, imagenet), 3, Geometry{ResizedW: 12, ResizedH: 8, OffX: -2}},
		{"center-crop nhwc tall", spec(8, 8, ChannelsGray, LayoutNHWC, ResizeCenterCrop, InterpLinear, Input{}), 1, Geometry{ResizedW: 8, ResizedH: 14, OffY: -3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.spec
			stride := tt.g.ResizedW*tt.srcCh + 5 // rows with a gap after them
			pix := make([]uint8, stride*tt.g.ResizedH)
			for i := range pix {
				pix[i] = uint8(i*37 + i/7)
			}
			got := make([]float32, p.Size())
			p.writeTensor(got, pix, stride, tt.srcCh, tt.g)
			C, W, H := p.C(), p.Width, p.Height
			for y := range H {
				for x := range W {
					sx, sy := x-tt.g.OffX, y-tt.g.OffY
					in := sx >= 0 && sx < tt.g.ResizedW && sy >= 0 && sy < tt.g.ResizedH
					for c := range C {
						k := c
						switch {
						case tt.srcCh == 1:
							k = 0
						case p.Channels == ChannelsRGB:
							k = 2 - c
						}
						want := float32(p.PadValue)*p.A[c] + p.B[c]
						if in {
							want = float32(pix[sy*stride+sx*tt.srcCh+k])*p.A[c] + p.B[c]
						}
						o := c*W*H + y*W + x
						if p.Layout == LayoutNHWC {
							o = (y*W+x)*C + c
						}
						if got[o] != want {
							t.Fatalf("pixel %d,%d channel %d: %v, want %v", x, y, c, got[o], want)
						}
					}
				}
			}
		})
	}
}
