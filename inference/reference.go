package inference

import (
	"fmt"
	"image"
	"math"
)

// Image is a plain 8-bit image for the pure-Go path: W x H pixels of Ch
// interleaved channels (1 gray, 3 BGR, 4 BGRA, OpenCV's order), rows Stride
// bytes apart.
type Image struct {
	W, H, Ch, Stride int
	Pix              []uint8
}

// Reference computes the same tensor as Preprocessor.Run without OpenCV,
// in plain Go: the definition the training-serving skew test (issue 5)
// compares Python's preprocessing against. It reproduces OpenCV 4.6's
// 8-bit fixed-point arithmetic (BGR2GRAY, INTER_LINEAR, INTER_NEAREST, and
// INTER_AREA for integer shrink factors), and the tests hold it bit-exact
// to the gocv path; Python's cv2 4.6 gives the same pixels. It allocates.
func (p *Preprocess) Reference(img Image, roi image.Rectangle, dst []float32) (Geometry, error) {
	if img.W <= 0 || img.H <= 0 || (img.Ch != 1 && img.Ch != 3 && img.Ch != 4) || img.Stride < img.W*img.Ch || len(img.Pix) < (img.H-1)*img.Stride+img.W*img.Ch {
		return Geometry{}, fmt.Errorf("reference preprocess: %w: %dx%d image with %d channels, stride %d, %d bytes", ErrBadInput, img.W, img.H, img.Ch, img.Stride, len(img.Pix))
	}
	full := image.Rect(0, 0, img.W, img.H)
	if roi.Empty() {
		roi = full
	} else if !roi.In(full) {
		return Geometry{}, fmt.Errorf("reference preprocess: %w: roi %v outside the %dx%d image", ErrBadInput, roi, img.W, img.H)
	}
	if len(dst) != p.Size() {
		return Geometry{}, fmt.Errorf("reference preprocess: %w: tensor has %d values, want %d", ErrShape, len(dst), p.Size())
	}
	// Crop.
	w, h, ch := roi.Dx(), roi.Dy(), img.Ch
	cur := make([]uint8, w*h*ch)
	for y := range h {
		o := (roi.Min.Y+y)*img.Stride + roi.Min.X*ch
		copy(cur[y*w*ch:(y+1)*w*ch], img.Pix[o:o+w*ch])
	}
	if p.Channels == ChannelsGray && ch > 1 {
		cur, ch = grayBT601(cur, w*h, ch), 1
	}
	g := p.Geometry(roi)
	if rw, rh := g.resizeTo(); rw != w || rh != h {
		var err error
		if cur, err = resizeRef(cur, w, h, ch, rw, rh, p.Interpolation); err != nil {
			return Geometry{}, err
		}
		w, h = rw, rh
	}
	if g.Rotated {
		cur = rotate90CW(cur, w, h, ch)
	}
	p.writeTensor(dst, cur, g.ResizedW*ch, ch, g)
	return g, nil
}

// rotate90CW is cv::rotate(ROTATE_90_CLOCKWISE) of a w x h image with ch
// channels: the result is h wide and w high, and its pixel (x, y) is the
// source's (y, h-1-x).
func rotate90CW(pix []uint8, w, h, ch int) []uint8 {
	out := make([]uint8, len(pix))
	for y := range w {
		for x := range h {
			copy(out[(y*h+x)*ch:(y*h+x+1)*ch], pix[((h-1-x)*w+y)*ch:((h-1-x)*w+y+1)*ch])
		}
	}
	return out
}

// grayBT601 is cv::cvtColor(BGR2GRAY) for 8-bit: fixed-point weights
// 0.114, 0.587, 0.299 in 15 bits, rounded.
func grayBT601(pix []uint8, n, ch int) []uint8 {
	const b, g, r, shift = 3735, 19235, 9798, 15
	out := make([]uint8, n)
	for i := range n {
		px := pix[i*ch:]
		out[i] = uint8((int(px[0])*b + int(px[1])*g + int(px[2])*r + 1<<(shift-1)) >> shift)
	}
	return out
}

func resizeRef(src []uint8, w, h, ch, W, H int, interp string) ([]uint8, error) {
	dst := make([]uint8, W*H*ch)
	sx, sy := 1/(float64(W)/float64(w)), 1/(float64(H)/float64(h)) // as cv::resize computes them
	switch interp {
	case InterpNearest:
		for y := range H {
			yy := min(int(math.Floor(float64(y)*sy)), h-1)
			for x := range W {
				xx := min(int(math.Floor(float64(x)*sx)), w-1)
				copy(dst[(y*W+x)*ch:(y*W+x+1)*ch], src[(yy*w+xx)*ch:(yy*w+xx+1)*ch])
			}
		}
	case InterpArea:
		if w%W != 0 || h%H != 0 {
			if W > w || H > h {
				return resizeRef(src, w, h, ch, W, H, InterpLinear) // OpenCV's area enlarges like linear
			}
			return nil, fmt.Errorf("reference preprocess: area resize %dx%d to %dx%d: only integer shrink factors are implemented", w, h, W, H)
		}
		fx, fy := w/W, h/H
		n := fx * fy
		for y := range H {
			for x := range W {
				for c := range ch {
					s := 0
					for j := range fy {
						for i := range fx {
							s += int(src[((y*fy+j)*w+x*fx+i)*ch+c])
						}
					}
					dst[(y*W+x)*ch+c] = uint8((s + n/2) / n)
				}
			}
		}
	default:
		// OpenCV's 8-bit linear resize: 11-bit fixed-point coefficients,
		// a horizontal pass into int rows, then the vertical blend
		// ((b0*(r0>>4))>>16 + (b1*(r1>>4))>>16 + 2) >> 2.
		type tap struct{ i0, i1, c0, c1 int }
		// Horizontally an edge tap gets weight 0 on the outside pixel;
		// vertically OpenCV keeps the weight and clamps the row index,
		// which matters for the rounding of the vertical blend.
		taps := func(n, N int, s float64, vertical bool) []tap {
			t := make([]tap, N)
			for d := range N {
				f := float32((float64(d)+0.5)*s - 0.5)
				i := int(math.Floor(float64(f)))
				a := f - float32(i)
				if vertical {
					c0 := int(math.RoundToEven(float64((1 - a) * 2048)))
					t[d] = tap{max(0, min(i, n-1)), max(0, min(i+1, n-1)), c0, 2048 - c0}
					continue
				}
				if i < 0 {
					i, a = 0, 0
				}
				if i >= n-1 {
					i, a = n-1, 0
				}
				c0 := int(math.RoundToEven(float64((1 - a) * 2048)))
				t[d] = tap{i, min(i+1, n-1), c0, 2048 - c0}
			}
			return t
		}
		tx, ty := taps(w, W, sx, false), taps(h, H, sy, true)
		row := func(y int, out []int) {
			for x, tx := range tx {
				for c := range ch {
					out[x*ch+c] = int(src[(y*w+tx.i0)*ch+c])*tx.c0 + int(src[(y*w+tx.i1)*ch+c])*tx.c1
				}
			}
		}
		r0, r1 := make([]int, W*ch), make([]int, W*ch)
		for y, ty := range ty {
			row(ty.i0, r0)
			row(ty.i1, r1)
			for i := range r0 {
				v := ((ty.c0*(r0[i]>>4))>>16 + (ty.c1*(r1[i]>>4))>>16 + 2) >> 2
				dst[y*W*ch+i] = uint8(max(0, min(255, v)))
			}
		}
	}
	return dst, nil
}
