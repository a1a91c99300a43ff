package camera

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Tile classes, named as in the magnetic-tile dataset (folder names).
const (
	ClassFree     = "free"     // no defect
	ClassBlowhole = "blowhole" // small round pit
	ClassBreak    = "break"    // chipped edge or corner
	ClassCrack    = "crack"    // thin dark line
	ClassFray     = "fray"     // large worn, darker area with faded grinding
	ClassUneven   = "uneven"   // a band ground differently, with a straight-ish step
)

// Classes lists the tile classes; index 0 is the good class.
var Classes = []string{ClassFree, ClassBlowhole, ClassBreak, ClassCrack, ClassFray, ClassUneven}

// DefectClasses lists the classes other than free.
var DefectClasses = Classes[1:]

// Tile is one generated part: an 8-bit grayscale image, its defect mask and
// its class. Pix and Mask are row-major, W*H bytes each; Mask is 255 on
// every pixel the defect changed and 0 elsewhere (all 0 for free).
// A Tile is reused across Generate calls: copy what you keep.
type Tile struct {
	W, H     int
	Pix      []byte
	Mask     []byte
	Class    string
	Index    uint64  // the part index it was generated for
	Exposure float64 // the exposure gain applied
}

// Generator draws magnetic-tile images. It is deterministic: the same
// options and index give the same tile, whatever was generated before, so
// datasets can be generated in parallel or resumed. A Generator is not safe
// for concurrent use (it keeps scratch buffers); use one per goroutine.
type Generator struct {
	opt SyntheticSpec
	// scratch, sized for opt.Size
	illumX, illumY []float32
	s1, s2, s3, s4 []float32
	m1, m2, m3     []float32 // streak strength along y, one per profile
	cx1, cy1       []float32 // separable low-frequency mottle
	field          []float32 // per-pixel float image before quantisation
	rad            []float32 // polar radius table for irregular shapes
}

// NewGenerator returns a generator for the given options, which must be
// valid (see Spec.Validate): size 32..4096, defect rate 0..1, 0 < exposure
// min <= max.
func NewGenerator(opt SyntheticSpec) (*Generator, error) {
	switch {
	case opt.Size < 32 || opt.Size > 4096:
		return nil, fmt.Errorf("synthetic size %d is out of range; use 32 to 4096", opt.Size)
	case opt.DefectRate < 0 || opt.DefectRate > 1 || math.IsNaN(opt.DefectRate):
		return nil, fmt.Errorf("synthetic defect rate %v is out of range; use 0 to 1", opt.DefectRate)
	case !(opt.ExposureMin > 0) || opt.ExposureMax < opt.ExposureMin:
		return nil, fmt.Errorf("synthetic exposure range %v..%v is invalid; need 0 < min <= max", opt.ExposureMin, opt.ExposureMax)
	}
	n := opt.Size
	return &Generator{
		opt:    opt,
		illumX: make([]float32, n), illumY: make([]float32, n),
		s1: make([]float32, n), s2: make([]float32, n), s3: make([]float32, n), s4: make([]float32, n),
		m1: make([]float32, n), m2: make([]float32, n), m3: make([]float32, n),
		cx1: make([]float32, n), cy1: make([]float32, n),
		field: make([]float32, n*n),
		rad:   make([]float32, 64),
	}, nil
}

// NewTile returns a Tile with buffers for the generator's size.
func (g *Generator) NewTile() *Tile {
	n := g.opt.Size
	return &Tile{W: n, H: n, Pix: make([]byte, n*n), Mask: make([]byte, n*n)}
}

// ClassOf returns the class part index i gets, without drawing the image.
func (g *Generator) ClassOf(i uint64) string {
	r := g.rng(i)
	return g.pickClass(r)
}

func (g *Generator) rng(i uint64) *rand.Rand {
	// Splitmix the index so neighbouring parts get unrelated streams.
	z := i + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return rand.New(rand.NewPCG(uint64(g.opt.Seed), z^(z>>31)))
}

func (g *Generator) pickClass(r *rand.Rand) string {
	if r.Float64() >= g.opt.DefectRate {
		return ClassFree
	}
	return DefectClasses[r.IntN(len(DefectClasses))]
}

// Generate draws part i into t (from NewTile), overwriting it.
func (g *Generator) Generate(i uint64, t *Tile) {
	n := g.opt.Size
	if t.W != n || t.H != n || len(t.Pix) != n*n || len(t.Mask) != n*n {
		panic(fmt.Sprintf("camera: Generate into a %dx%d tile, generator size is %d", t.W, t.H, n))
	}
	r := g.rng(i)
	class := g.pickClass(r)
	exp := g.opt.ExposureMin + r.Float64()*(g.opt.ExposureMax-g.opt.ExposureMin)
	t.Class, t.Index, t.Exposure = class, i, exp
	clear(t.Mask)

	g.ground(r)
	g.distractors(r)
	switch class {
	case ClassBlowhole:
		g.blowhole(r, t.Mask)
	case ClassBreak:
		g.breakEdge(r, t.Mask)
	case ClassCrack:
		g.crack(r, t.Mask)
	case ClassFray:
		g.fray(r, t.Mask)
	case ClassUneven:
		g.uneven(r, t.Mask)
	}
	g.quantise(r, t.Pix, float32(exp))
}

// scale converts a length given for a 256-pixel tile to this size.
func (g *Generator) scale(px float64) float64 { return px * float64(g.opt.Size) / 256 }

// ground draws the tile surface into field: vertical grinding streaks whose
// strength drifts along the part, a bright cylindrical highlight, a vertical
// light gradient, and sometimes the tile's dark edge or shadowed top.
func (g *Generator) ground(r *rand.Rand) {
	n := g.opt.Size
	base := float32(55 + r.Float64()*30) // mean gray before exposure
	// Cylindrical highlight across x, light falloff along y.
	cx := 0.2 + r.Float64()*0.6
	w := 0.15 + r.Float64()*0.35
	hi := float32(10 + r.Float64()*35)
	edgeDark := float32(r.Float64() * 15)
	for x := range n {
		u := float64(x)/float64(n) - cx
		bump := math.Exp(-u * u / (2 * w * w))
		fx := float64(x) / float64(n)
		edge := math.Min(fx, 1-fx)
		g.illumX[x] = base + hi*float32(bump) - edgeDark*float32(math.Exp(-edge*12))
	}
	gy := float32(r.Float64()*0.5 - 0.15) // bottom brighter mostly
	for y := range n {
		fy := float32(y)/float32(n) - 0.5
		g.illumY[y] = 1 + gy*fy
	}
	// Grinding streaks: per-column noise, lightly smoothed so streaks are
	// 1-3 px wide, with a few strong bright scratches. Three profiles, each
	// with its own strength along y, so streaks fade in and out down the
	// part instead of running as perfect lines.
	amp := float32(4 + r.Float64()*8)
	g.streaks(r, g.s1, amp)
	g.streaks(r, g.s2, amp)
	g.streaks(r, g.s4, amp)
	g.smoothProfile(r, g.m1, 1, 3)
	g.smoothProfile(r, g.m2, 1, 3)
	g.smoothProfile(r, g.m3, 2, 5)
	// Low-frequency mottle: a separable product of smooth profiles.
	g.smoothProfile(r, g.cx1, 1, 4)
	g.smoothProfile(r, g.cy1, 1, 4)
	mott := float32(4 + r.Float64()*8)
	for x := range g.cx1 {
		g.cx1[x] = (g.cx1[x] - 0.5) * mott
	}
	for y := range n {
		row := g.field[y*n : (y+1)*n]
		iy, a, b, c, my := g.illumY[y], g.m1[y], g.m2[y], g.m3[y], g.cy1[y]
		for x := range row {
			row[x] = g.illumX[x]*iy + g.s1[x]*a + g.s2[x]*b + g.s4[x]*c + g.cx1[x]*my
		}
	}
	// The tile's end: a dark vertical margin at one side.
	if r.Float64() < 0.25 {
		m := int(g.scale(2 + r.Float64()*8))
		left := r.IntN(2) == 0
		for y := range n {
			row := g.field[y*n : (y+1)*n]
			for k := 0; k < m && k < n; k++ {
				x := k
				if !left {
					x = n - 1 - k
				}
				row[x] = row[x]*0.35 + 5
			}
		}
	}
	// The shadowed top of the curved tile: a dark arc.
	if r.Float64() < 0.25 {
		d := g.scale(3 + r.Float64()*8)
		sag := g.scale(2 + r.Float64()*8)
		for x := range n {
			u := 2*float64(x)/float64(n) - 1
			h := int(d + sag*(1-u*u))
			for y := 0; y < h && y < n; y++ {
				g.field[y*n+x] = g.field[y*n+x]*0.3 + 8
			}
		}
	}
}

// smoothProfile fills p with a smooth random curve in 0..1: a sum of a few
// sinusoids with between lo and hi periods over the length.
func (g *Generator) smoothProfile(r *rand.Rand, p []float32, lo, hi float64) {
	n := float64(len(p))
	var f, ph, a [3]float64
	for k := range f {
		f[k] = (lo + r.Float64()*(hi-lo)) * 2 * math.Pi / n
		ph[k] = r.Float64() * 2 * math.Pi
		a[k] = r.Float64()
	}
	sum := a[0] + a[1] + a[2] + 1e-9
	for i := range p {
		v := 0.0
		for k := range f {
			v += a[k] * math.Sin(ph[k]+f[k]*float64(i))
		}
		p[i] = float32(0.5 + 0.5*v/sum)
	}
}

// streakAt is the grinding-streak term of the ground at (x, y).
func (g *Generator) streakAt(x, y int) float32 {
	return g.s1[x]*g.m1[y] + g.s2[x]*g.m2[y] + g.s4[x]*g.m3[y]
}

func (g *Generator) streaks(r *rand.Rand, s []float32, amp float32) {
	n := len(s)
	for x := range s {
		s[x] = float32(r.NormFloat64())
	}
	// smooth with [1 2 1]/4 once or twice: streaks 1-3 px wide
	passes := 1 + r.IntN(2)
	for range passes {
		prev := s[0]
		for x := 1; x < n-1; x++ {
			cur := s[x]
			s[x] = 0.25*prev + 0.5*cur + 0.25*s[x+1]
			prev = cur
		}
	}
	for x := range s {
		s[x] *= amp
	}
	// a few strong bright grinding lines
	for range r.IntN(1 + n/16) {
		x := r.IntN(n)
		s[x] += amp * float32(1.5+2*r.Float64())
	}
}

// distractors adds what good tiles also show, outside any mask: faint
// stains and hairline scratches with far less contrast than a crack.
func (g *Generator) distractors(r *rand.Rand) {
	n := g.opt.Size
	for range r.IntN(4) {
		cx, cy := r.Float64()*float64(n), r.Float64()*float64(n)
		rad := g.scale(6 + r.Float64()*30)
		d := float32((r.Float64()*2 - 1) * 6)
		g.blob(cx, cy, rad, rad*(0.5+r.Float64()), d)
	}
	for range r.IntN(3) {
		x, y := r.Float64()*float64(n), r.Float64()*float64(n)
		ang := r.Float64() * 2 * math.Pi
		l := int(g.scale(15 + r.Float64()*50))
		d := float32(-3 - r.Float64()*4)
		for range l {
			ang += (r.Float64() - 0.5) * 0.3
			x += math.Cos(ang)
			y += math.Sin(ang)
			xi, yi := int(x), int(y)
			if xi < 0 || yi < 0 || xi >= n || yi >= n {
				break
			}
			g.field[yi*n+xi] += d
		}
	}
}

// blob adds a soft elliptic stain of depth d (no mask: not a defect).
func (g *Generator) blob(cx, cy, rx, ry float64, d float32) {
	n := g.opt.Size
	x0, x1 := clampInt(int(cx-rx), 0, n), clampInt(int(cx+rx)+1, 0, n)
	y0, y1 := clampInt(int(cy-ry), 0, n), clampInt(int(cy+ry)+1, 0, n)
	irx, iry := 1/rx, 1/ry
	for y := y0; y < y1; y++ {
		dy := (float64(y) - cy) * iry
		row := g.field[y*n : (y+1)*n]
		for x := x0; x < x1; x++ {
			dx := (float64(x) - cx) * irx
			q := dx*dx + dy*dy
			if q < 1 {
				w := float32((1 - q) * (1 - q))
				row[x] += d * w
			}
		}
	}
}

// shape is an irregular ellipse: centre, radii, rotation; its outline is
// the ellipse scaled by g.rad (set by roughen) as a function of angle.
type shape struct {
	cx, cy, rx, ry float64
	cos, sin       float64
	maxRad         float64
}

func newShape(cx, cy, rx, ry, angle float64) shape {
	return shape{cx: cx, cy: cy, rx: rx, ry: ry, cos: math.Cos(angle), sin: math.Sin(angle)}
}

// roughen fills the polar radius table with 1 + a sum of random harmonics
// of total amplitude about rough, and returns its maximum.
func (g *Generator) roughen(r *rand.Rand, rough float64, egg float64) float64 {
	var a [6]float64
	var ph [6]float64
	for k := range a {
		a[k] = rough * r.Float64() / float64(k+1)
		ph[k] = r.Float64() * 2 * math.Pi
	}
	m := 0.0
	for b := range g.rad {
		th := 2*math.Pi*float64(b)/float64(len(g.rad)) - math.Pi
		v := 1.0
		for k := range a {
			v += a[k] * math.Sin(float64(k+2)*th+ph[k])
		}
		// egg: one end wider than the other (along the shape's y axis)
		v *= 1 + egg*math.Sin(th)
		if v < 0.2 {
			v = 0.2
		}
		g.rad[b] = float32(v)
		m = math.Max(m, v)
	}
	return m
}

// fill marks every pixel inside s in mask and calls fn with the pixel's
// index and its relative distance from the centre (0 centre, 1 outline).
func (g *Generator) fill(s shape, mask []byte, fn func(i, x, y int, q float32)) {
	n := g.opt.Size
	ext := math.Max(s.rx, s.ry) * s.maxRad
	x0, x1 := clampInt(int(s.cx-ext), 0, n), clampInt(int(s.cx+ext)+2, 0, n)
	y0, y1 := clampInt(int(s.cy-ext), 0, n), clampInt(int(s.cy+ext)+2, 0, n)
	irx, iry := 1/s.rx, 1/s.ry
	nb := float64(len(g.rad))
	for y := y0; y < y1; y++ {
		dy := float64(y) - s.cy
		for x := x0; x < x1; x++ {
			dx := float64(x) - s.cx
			ux := (dx*s.cos + dy*s.sin) * irx
			uy := (-dx*s.sin + dy*s.cos) * iry
			d := math.Sqrt(ux*ux + uy*uy)
			if d > s.maxRad {
				continue
			}
			f := (math.Atan2(uy, ux) + math.Pi) / (2 * math.Pi) * nb
			b0 := int(f)
			t := float32(f - float64(b0))
			b0 %= len(g.rad)
			b1 := (b0 + 1) % len(g.rad)
			R := g.rad[b0]*(1-t) + g.rad[b1]*t
			if float32(d) >= R {
				continue
			}
			i := y*n + x
			mask[i] = 255
			fn(i, x, y, float32(d)/R)
		}
	}
}

// blowhole: one or two small dark pits with a darker core.
func (g *Generator) blowhole(r *rand.Rand, mask []byte) {
	n := float64(g.opt.Size)
	holes := 1
	if r.Float64() < 0.2 {
		holes = 2
	}
	for range holes {
		rx := g.scale(3 + r.Float64()*5)
		s := newShape(n*(0.08+0.84*r.Float64()), n*(0.08+0.84*r.Float64()), rx, rx*(0.6+0.7*r.Float64()), r.Float64()*math.Pi)
		s.maxRad = g.roughen(r, 0.15, 0)
		depth := float32(0.45 + 0.3*r.Float64())
		g.fill(s, mask, func(i, _, _ int, q float32) {
			g.field[i] *= 1 - depth*(1-0.45*q*q)
		})
	}
}

// crack: a thin, dark, wandering line, mostly along the part, sometimes
// with a branch.
func (g *Generator) crack(r *rand.Rand, mask []byte) {
	n := g.opt.Size
	fn := float64(n)
	ang := math.Pi / 2 * float64(1-2*r.IntN(2))
	if r.Float64() < 0.4 {
		ang = r.Float64() * 2 * math.Pi
	}
	x, y := fn*(0.1+0.8*r.Float64()), fn*(0.1+0.8*r.Float64())
	length := g.scale(50 + r.Float64()*160)
	th := g.scale(1.2 + r.Float64()*1.0)
	g.walk(r, mask, x, y, ang, length, th)
	if r.Float64() < 0.3 {
		// a branch from somewhere on the crack already drawn
		for range 200 {
			bx, by := r.IntN(n), r.IntN(n)
			if mask[by*n+bx] != 0 {
				g.walk(r, mask, float64(bx), float64(by), ang+(r.Float64()-0.5)*2.4, length*(0.2+0.3*r.Float64()), th*0.8)
				break
			}
		}
	}
	k := float32(0.3 + 0.25*r.Float64())
	for i, m := range mask {
		if m != 0 {
			g.field[i] = g.field[i]*k + 3
		}
	}
}

// walk draws a crack of discs into mask: a nearly straight path with
// jagged small deviations and the odd bend, thickest in the middle.
func (g *Generator) walk(r *rand.Rand, mask []byte, x, y, ang, length, th float64) {
	n := g.opt.Size
	turn := 0.0
	for s := 0.0; s < length; s++ {
		turn = 0.6*turn + (r.Float64()-0.5)*0.05
		if r.Float64() < 0.008 {
			ang += (r.Float64() - 0.5) * 1.4 // a bend
		}
		ang += turn
		x += math.Cos(ang)
		y += math.Sin(ang)
		if x < 0 || y < 0 || x >= float64(n) || y >= float64(n) {
			return
		}
		// jag sideways by up to half a pixel, taper to 60% at the ends
		jx := x + (r.Float64()-0.5)*math.Sin(ang)
		jy := y - (r.Float64()-0.5)*math.Cos(ang)
		t := s / length
		rad := th * (0.6 + 0.8*math.Min(t, 1-t))
		ri := int(math.Ceil(rad))
		for dy := -ri; dy <= ri; dy++ {
			for dx := -ri; dx <= ri; dx++ {
				px, py := int(jx)+dx, int(jy)+dy
				if px < 0 || py < 0 || px >= n || py >= n {
					continue
				}
				fx, fy := float64(px)+0.5-jx, float64(py)+0.5-jy
				if fx*fx+fy*fy <= rad*rad {
					mask[py*n+px] = 255
				}
			}
		}
	}
}

// breakEdge: material missing at an edge of the part, showing the dark
// fixture or the light belt beneath.
func (g *Generator) breakEdge(r *rand.Rand, mask []byte) {
	n := g.opt.Size
	fn := float64(n)
	side := r.IntN(4)
	var rx, ry float64 // rx along the edge, ry into the part
	if r.Float64() < 0.3 {
		rx, ry = g.scale(35+r.Float64()*70), g.scale(4+r.Float64()*7) // a long sliver
	} else {
		rx, ry = g.scale(10+r.Float64()*30), g.scale(10+r.Float64()*28) // a chip
	}
	along := fn * (0.1 + 0.8*r.Float64())
	if r.Float64() < 0.3 { // at a corner
		along = fn * float64(r.IntN(2))
	}
	var s shape
	switch side {
	case 0: // top
		s = newShape(along, 0, rx, ry, 0)
	case 1: // bottom
		s = newShape(along, fn-1, rx, ry, 0)
	case 2: // left
		s = newShape(0, along, rx, ry, math.Pi/2)
	default: // right
		s = newShape(fn-1, along, rx, ry, math.Pi/2)
	}
	s.maxRad = g.roughen(r, 0.35, 0)
	dark := r.Float64() < 0.5
	var bg, tex float32
	if dark {
		bg, tex = float32(8+r.Float64()*20), 6
	} else {
		bg, tex = float32(110+r.Float64()*60), 30
	}
	seed := uint32(r.Uint64()) | 1
	g.fill(s, mask, func(i, x, y int, q float32) {
		h := hash2(uint32(x>>1), uint32(y>>1), seed)
		v := bg + tex*(float32(h&255)/255-0.5)
		if q > 0.85 { // the fracture face, shaded
			v *= 0.6
		}
		g.field[i] = v
	})
}

// fray: a large worn area, darker, its grinding streaks faded, with a
// faint outline; elongated along the part, often egg-shaped.
func (g *Generator) fray(r *rand.Rand, mask []byte) {
	n := g.opt.Size
	fn := float64(n)
	rx := g.scale(22 + r.Float64()*35)
	ry := g.scale(55 + r.Float64()*60)
	s := newShape(fn*(0.3+0.4*r.Float64()), fn*(0.35+0.3*r.Float64()), rx, ry, (r.Float64()-0.5)*0.5)
	s.maxRad = g.roughen(r, 0.12, (r.Float64()-0.5)*0.5)
	off := float32(-12 - r.Float64()*22)
	if r.Float64() < 0.2 {
		off = float32(10 + r.Float64()*15) // sometimes polished lighter
	}
	keep := float32(0.2 + 0.2*r.Float64())
	seed := uint32(r.Uint64()) | 1
	g.fill(s, mask, func(i, x, y int, q float32) {
		ill := g.illumX[x] * g.illumY[y]
		h := hash2(uint32(x>>2), uint32(y>>2), seed)
		v := ill + (g.field[i]-ill)*keep + off + 8*(float32(h&255)/255-0.5)
		if q > 0.92 {
			v -= 10
		}
		g.field[i] = v
	})
}

// uneven: a band across the part, from the top or bottom edge to a
// straight-ish step, ground with coarser streaks and a different level.
func (g *Generator) uneven(r *rand.Rand, mask []byte) {
	n := g.opt.Size
	fn := float64(n)
	fromTop := r.IntN(2) == 0
	b := fn * (0.15 + 0.45*r.Float64())
	slope := (r.Float64() - 0.5) * 0.15
	wave := g.scale(r.Float64() * 3)
	wph := r.Float64() * 2 * math.Pi
	amp := float32(10 + r.Float64()*14)
	g.streaks(r, g.s3, amp)
	off := float32(8 + r.Float64()*14)
	if r.IntN(2) == 0 {
		off = -off
	}
	x0, x1 := 0, n
	if r.Float64() < 0.2 { // a band that does not cross the whole part
		if r.IntN(2) == 0 {
			x0 = int(fn * (0.2 + 0.3*r.Float64()))
		} else {
			x1 = int(fn * (0.5 + 0.3*r.Float64()))
		}
	}
	for x := x0; x < x1; x++ {
		edge := b + slope*(float64(x)-fn/2) + wave*math.Sin(wph+float64(x)*0.05)
		ya, yb := 0, clampInt(int(edge), 0, n)
		if !fromTop {
			ya, yb = clampInt(n-int(edge), 0, n), n
		}
		for y := ya; y < yb; y++ {
			i := y*n + x
			g.field[i] += g.s3[x] - g.streakAt(x, y) + off
			mask[i] = 255
		}
	}
}

// quantise applies the exposure and sensor noise and writes bytes.
func (g *Generator) quantise(r *rand.Rand, pix []byte, exp float32) {
	s := uint32(r.Uint64()) | 1
	amp := float32(3 + r.Float64()*5)
	k := amp / 255
	for i, v := range g.field {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		nz := float32(int32(s&255)+int32(s>>8&255)-255) * k
		v = v*exp + nz + 0.5
		switch {
		case v < 0:
			pix[i] = 0
		case v > 255:
			pix[i] = 255
		default:
			pix[i] = byte(v)
		}
	}
}

// hash2 is a small integer hash for coarse textures.
func hash2(x, y, seed uint32) uint32 {
	h := x*0x27d4eb2d ^ y*0x165667b1 ^ seed
	h ^= h >> 15
	h *= 0x2c1b3c6d
	h ^= h >> 12
	return h
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
