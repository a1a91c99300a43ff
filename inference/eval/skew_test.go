package eval

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference"
)

// python is the interpreter with torch, cv2 and numpy (Debian's); the
// pyenv python3 on PATH lacks them.
const python = "/usr/bin/python3"

// repoRoot is the repository root, from this package's directory.
const repoRoot = "../.."

func needPython(t *testing.T, modules ...string) {
	t.Helper()
	args := []string{"-c", "import " + joinComma(modules)}
	if out, err := exec.Command(python, args...).CombinedOutput(); err != nil {
		t.Skipf("%s with %v is needed (Debian python3-opencv, python3-numpy, python3-torch): %v: %s", python, modules, err, out)
	}
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// skewImages writes test images covering what the line and the datasets
// give: a synthetic gray JPEG tile (256 px: an integer shrink), a BGR
// colour PNG of odd size (gray conversion, a fractional shrink), and a small
// gray PNG (an enlargement); plus a few real magnetic-tile images when the
// shared dataset is present.
func skewImages(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	gen, err := camera.NewGenerator(camera.SyntheticSpec{Seed: 7, Size: 256, DefectRate: 1, ExposureMin: 0.8, ExposureMax: 1.2})
	if err != nil {
		t.Fatal(err)
	}
	tile := gen.NewTile()
	for i := range 3 {
		gen.Generate(uint64(i), tile)
		p := filepath.Join(dir, "synth"+strconv.Itoa(i)+".jpg")
		writeImg(t, p, &image.Gray{Pix: tile.Pix, Stride: tile.W, Rect: image.Rect(0, 0, tile.W, tile.H)})
		paths = append(paths, p)
	}
	col := image.NewRGBA(image.Rect(0, 0, 301, 217))
	for y := range 217 {
		for x := range 301 {
			col.Set(x, y, color.RGBA{uint8(x * 255 / 300), uint8(y * 255 / 216), uint8((x*7 + y*13) % 256), 255})
		}
	}
	p := filepath.Join(dir, "colour.png")
	writeImg(t, p, col)
	paths = append(paths, p)
	small := image.NewGray(image.Rect(0, 0, 97, 131))
	for i := range small.Pix {
		small.Pix[i] = uint8((i*37 + i/97*11) % 256)
	}
	p = filepath.Join(dir, "small.png")
	writeImg(t, p, small)
	paths = append(paths, p)
	real := filepath.Join(repoRoot, "..", "shared", "datasets", "magnetic-tile")
	for _, c := range []string{"free", "blowhole", "crack", "uneven"} {
		ms, _ := filepath.Glob(filepath.Join(real, c, "exp*.jpg"))
		sort.Strings(ms)
		n := 0
		for _, m := range ms {
			if IsImage(filepath.Base(m)) && n < 2 {
				paths = append(paths, m)
				n++
			}
		}
	}
	return paths
}

func writeImg(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if filepath.Ext(path) == ".jpg" {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 92})
	} else {
		err = png.Encode(f, img)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestTrainingServingSkew feeds the same image files through the Python
// training preprocessing (scripts/train/lsdata.py) and the Go serving
// preprocessing (gocv decode + inference.Preprocessor with the input spec
// train.py writes into the manifest) and bounds the difference. The
// per-image standardisation is inside the ONNX graph, so this is the whole
// preprocessing outside it.
func TestTrainingServingSkew(t *testing.T) {
	needPython(t, "cv2", "numpy")
	paths := skewImages(t)
	for _, c := range []struct {
		w, h   int
		resize string
		pad    int
		orient string
	}{
		{128, 128, inference.ResizeStretch, 0, inference.OrientNone},
		{192, 192, inference.ResizeStretch, 0, inference.OrientNone},
		{192, 192, inference.ResizeLetterbox, 0, inference.OrientNone},
		{160, 160, inference.ResizeLetterbox, 114, inference.OrientNone},
		// parts turned so that their long side runs along a landscape input
		{192, 128, inference.ResizeStretch, 0, inference.OrientLandscape},
		{160, 96, inference.ResizeLetterbox, 114, inference.OrientLandscape},
	} {
		dims := fmt.Sprintf("%dx%d", c.w, c.h)
		size := dims // how the messages name the case
		if c.orient != inference.OrientNone {
			size += " " + c.orient
		}
		out := filepath.Join(t.TempDir(), "py.f32")
		statsOut := filepath.Join(t.TempDir(), "py.stats")
		args := append([]string{filepath.Join(repoRoot, "scripts", "train", "preprocess_dump.py"), "--size", dims,
			"--resize", c.resize, "--pad", strconv.Itoa(c.pad), "--orient", c.orient, "--out", out, "--stats", statsOut}, paths...)
		if b, err := exec.Command(python, args...).CombinedOutput(); err != nil {
			t.Fatalf("preprocess_dump: %v: %s", err, b)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		n := c.w * c.h
		if len(raw) != 4*n*len(paths) {
			t.Fatalf("python wrote %d bytes, want %d", len(raw), 4*n*len(paths))
		}
		pyStats, err := os.ReadFile(statsOut)
		if err != nil {
			t.Fatal(err)
		}
		if len(pyStats) != 3*8*len(paths) {
			t.Fatalf("python wrote %d bytes of statistics, want %d", len(pyStats), 3*8*len(paths))
		}
		spec := inference.NewPreprocess(inference.Input{Name: "input", Shape: []int64{-1, 1, int64(c.h), int64(c.w)},
			Layout: inference.LayoutNCHW, Channels: inference.ChannelsGray, Resize: c.resize, PadValue: float64(c.pad), Orient: c.orient,
			Interpolation: inference.InterpLinear, Scale: 1 / 255.0})
		pp := inference.NewPreprocessor(spec)
		dst := make([]float32, spec.Size())
		for i, p := range paths {
			img := gocv.IMRead(p, gocv.IMReadColor)
			if img.Empty() {
				t.Fatalf("gocv cannot read %s", p)
			}
			_, st, err := pp.RunMeasured(img, image.Rectangle{}, dst)
			img.Close()
			if err != nil {
				t.Fatal(err)
			}
			// The reference statistics train.py records and the ones the
			// engine measures on the same file: the same resized pixels up
			// to a gray level, so close to equal.
			for k, m := range []struct {
				name string
				got  float64
				tol  func(py float64) float64
			}{
				{"brightness", st.Brightness, func(float64) float64 { return 1.0 / 255 }},
				{"contrast", st.Contrast, func(float64) float64 { return 1.0 / 255 }},
				{"sharpness", st.Sharpness, func(py float64) float64 { return 0.05*py + 1e-6 }},
			} {
				py := math.Float64frombits(binary.LittleEndian.Uint64(pyStats[8*(3*i+k):]))
				if d := math.Abs(m.got - py); d > m.tol(py) {
					t.Errorf("%s %s %s: %s: go %.6g, python %.6g (bound %.3g)", size, c.resize, filepath.Base(p), m.name, m.got, py, m.tol(py))
				} else if d > 1e-12 {
					t.Logf("%s %s %s: %s: go %.6g, python %.6g", size, c.resize, filepath.Base(p), m.name, m.got, py)
				}
			}
			var maxd, sum float64
			for j := range n {
				py := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(i*n+j):]))
				d := math.Abs(float64(py - dst[j]))
				maxd = max(maxd, d)
				sum += d
			}
			mean := sum / float64(n)
			t.Logf("%s %s %s: max |go-python| %.3g, mean %.3g", size, c.resize, filepath.Base(p), maxd, mean)
			// Both sides are OpenCV 4.6 with the same flags: at most one gray
			// level apart anywhere (JPEG decoders of different builds), and
			// on average far less.
			if maxd > 1.0/255+1e-6 || mean > 1e-3 {
				t.Errorf("%s %s %s: training-serving skew: max %.4g (bound %.4g), mean %.4g (bound 1e-3)", size, c.resize, p, maxd, 1.0/255, mean)
			}
		}
		pp.Close()
	}
}

// TestWindowsMatchTraining: the Go engine cuts the same windows as
// train.py trained and calibrated on (inference.Windows.Of against
// lsdata.windows), over the data set's shapes and the edge cases of the
// rule, with and without corner views.
func TestWindowsMatchTraining(t *testing.T) {
	needPython(t, "cv2", "numpy")
	type tc struct {
		W, H      int
		Overlap   float64
		MinAspect float64
		Corners   float64
	}
	var cases []tc
	for _, wh := range [][2]int{{616, 252}, {252, 616}, {611, 247}, {400, 400}, {259, 200}, {260, 200}, {300, 100}, {1000, 250}, {1, 5}, {703, 250}, {250, 703}, {1237, 411}, {215, 283}, {221, 278}} {
		for _, p := range [][3]float64{{0.25, 1.3, 0}, {0, 1, 0}, {0.5, 1, 0}, {0.9, 2, 0}, {1.0 / 3, 1.5, 0},
			{0.25, 2, 0.5}, {0, 0, 0.5}, {0, 0, 0.35}, {0.25, 1.3, 0.999}} {
			cases = append(cases, tc{wh[0], wh[1], p[0], p[1], p[2]})
		}
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	script := `import json, sys; sys.path.insert(0, sys.argv[1]); import lsdata
print(json.dumps([lsdata.windows(c["W"], c["H"], c["Overlap"], c["MinAspect"], c["Corners"]) for c in json.loads(sys.argv[2])]))`
	out, err := exec.Command(python, "-c", script, filepath.Join(repoRoot, "scripts", "train"), string(in)).Output()
	if err != nil {
		t.Fatalf("lsdata.windows: %v", err)
	}
	var py [][][3]int
	if err := json.Unmarshal(out, &py); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	some := 0
	for i, c := range cases {
		ws := &inference.Windows{Overlap: c.Overlap, MinAspect: c.MinAspect, Corners: c.Corners}
		var got [][3]int
		for _, r := range ws.Of(image.Rect(0, 0, c.W, c.H)) {
			got = append(got, [3]int{r.Min.X, r.Min.Y, r.Dx()})
		}
		if fmt.Sprint(got) != fmt.Sprint(py[i]) && !(len(got) == 0 && len(py[i]) == 0) {
			t.Errorf("%+v: Go %v, Python %v", c, got, py[i])
		}
		some += len(got)
	}
	if some < 100 {
		t.Fatalf("only %d windows over %d cases: the cases do not exercise the rule", some, len(cases))
	}
}
