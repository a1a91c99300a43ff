package inference

import "math"

// grayStats computes InputStats of an 8-bit gray image of w x h pixels whose
// rows lie stride bytes apart, exactly as the training script's
// lsdata.measure does on gray/255: population mean and standard deviation,
// and the population variance of the 4-neighbour Laplacian (cv2.Laplacian
// ksize 1) with the reflect-101 border. The sums are exact integers; the
// division by 255 happens once at the end, so the results agree with
// numpy's float64 to rounding.
func grayStats(pix []uint8, stride, w, h int) InputStats {
	if w <= 0 || h <= 0 {
		return InputStats{}
	}
	var sum, sq, lsq uint64
	var lsum int64
	for y := range h {
		row := pix[y*stride:][:w]
		// reflect-101: row -1 is row 1, row h is row h-2 (a single row
		// reflects onto itself).
		up, down := y-1, y+1
		if up < 0 {
			up = min(1, h-1)
		}
		if down >= h {
			down = max(h-2, 0)
		}
		ur := pix[up*stride:][:w]
		dr := pix[down*stride:][:w]
		var rs, rq, lq uint64
		var ls int64
		// The two edge columns reflect; the interior runs without branches.
		edge := func(x, l, r int) {
			v := uint64(row[x])
			lap := int64(row[l]) + int64(row[r]) + int64(ur[x]) + int64(dr[x]) - 4*int64(v)
			rs += v
			rq += v * v
			ls += lap
			lq += uint64(lap * lap)
		}
		if w == 1 {
			edge(0, 0, 0)
		} else {
			edge(0, 1, 1)
			edge(w-1, w-2, w-2)
		}
		if w > 2 {
			c, l, r, u, d := row[1:w-1], row[:w-2], row[2:w], ur[1:w-1], dr[1:w-1]
			n := len(c)
			l, r, u, d = l[:n], r[:n], u[:n], d[:n]
			for i, v := range c {
				vi := int64(v)
				lap := int64(l[i]) + int64(r[i]) + int64(u[i]) + int64(d[i]) - 4*vi
				rs += uint64(v)
				rq += uint64(vi * vi)
				ls += lap
				lq += uint64(lap * lap)
			}
		}
		sum += rs
		sq += rq
		lsum += ls
		lsq += lq
	}
	n := float64(w * h)
	mean := float64(sum) / n
	vr := math.Max(float64(sq)/n-mean*mean, 0)
	lmean := float64(lsum) / n
	lvr := math.Max(float64(lsq)/n-lmean*lmean, 0)
	return InputStats{Brightness: mean / 255, Contrast: math.Sqrt(vr) / 255, Sharpness: lvr / (255 * 255)}
}
