package main

import (
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linesight/linesight/inference"
)

// TestTrainWindowsSmoke trains tiny networks with --windows on a
// synthetic set of elongated parts (96x32, half of them photographed
// crosswise), and with --corners alone on nearly square ones (40x34), with
// the recipe's augmentations. The package must ask for those views, and
// the Go engine, scoring each val part's whole view and windows and keeping
// the lowest P(good), must give what train.py calibrated on (its worst view
// per part) to 1e-5; the same package with the windows dropped must not
// (the windows decide some parts).
func TestTrainWindowsSmoke(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  image.Point
		flags []string
		want  inference.Windows
		extra string // the training.extra key that describes them
	}{
		{"windows along elongated parts", image.Pt(96, 32), []string{"--windows", "0.25"},
			inference.Windows{Overlap: 0.25, MinAspect: 1.3}, "windows"},
		{"corners only", image.Pt(40, 34), []string{"--corners", "0.5"},
			inference.Windows{Corners: 0.5}, "corners"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := trainShaped(t, tc.size, append([]string{"--size", "32"}, tc.flags...)...)
			out, m := st.out, st.pkg.Manifest
			if w := m.Input.Windows; w == nil || *w != tc.want || m.Training.Extra[tc.extra] == "" {
				t.Fatalf("manifest input windows %+v, training.extra %v: want %+v and extra %q", w, m.Training.Extra, tc.want, tc.extra)
			}
			vs := st.val
			r := evalJSON(t, out, filepath.Join(out, "heldout", "val"))
			if worst := maxScoreGap(t, vs, &r); worst > 1e-5 {
				t.Errorf("P(good) of go and python differ by up to %.3g on the %d val parts", worst, len(r.Parts))
			}
			// Every part is scored whole and in its windows; the report
			// names the deciding view, and a window decides some parts.
			views, byWin := 1+len(m.Input.Windows.Of(image.Rectangle{Max: tc.size})), 0
			for _, p := range r.Parts {
				if p.Views != views || p.View < 0 || p.View >= views {
					t.Errorf("%s: view %d of %d; want one of the %d views", p.File, p.View, p.Views, views)
				}
				if p.View > 0 {
					byWin++
				}
			}
			if byWin == 0 {
				t.Errorf("no val part decided by a window")
			}
			whole := editedCopy(t, out, func(m *inference.Manifest) { m.Input.Windows = nil })
			rw := evalJSON(t, whole, filepath.Join(out, "heldout", "val"))
			for _, p := range rw.Parts {
				if p.Views != 1 || p.View != 0 {
					t.Errorf("%s without windows: view %d of %d; want the whole part, the only view", p.File, p.View, p.Views)
				}
			}
			if gap := maxScoreGap(t, vs, &rw); gap < 1e-3 {
				t.Errorf("without windows the engine scores the val parts within %.3g of train.py's worst views: the windows decided nothing", gap)
			} else {
				t.Logf("%d val parts: go = python with windows; the whole view alone differs by up to %.3g", len(r.Parts), gap)
			}
		})
	}
}

// editedCopy copies the package at dir (manifest and model) to a new
// folder with its manifest changed by edit.
func editedCopy(t *testing.T, dir string, edit func(*inference.Manifest)) string {
	t.Helper()
	pkg, err := inference.LoadPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	edit(pkg.Manifest)
	b, err := pkg.Manifest.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	to := t.TempDir()
	if err := os.WriteFile(filepath.Join(to, inference.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, inference.ModelFile), pkg.Model, 0o644); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestCornersUsage: wrong --corners options exit 2 with a message that
// says what to give, before any data is read.
func TestCornersUsage(t *testing.T) {
	needTorch(t)
	wantUsage(t, "--corners must be in [0, 1)", "--corners", "1.5", "--arch", "segnet")
	wantUsage(t, "--corners must be in [0, 1)", "--corners", "-0.5", "--arch", "segnet")
	wantUsage(t, "--corners scores square windows", "--corners", "0.5", "--arch", "segnet", "--size", "64x32")
	wantUsage(t, "--corners needs the defect masks", "--corners", "0.5")
	wantUsage(t, "--corners does not combine with --folds", "--corners", "0.5", "--arch", "segnet", "--folds", "3")
}

// TestViewWeights checks train.py's view_weights on 6 good photos and 2
// defect ones, the first good photo with 2 windows and 4 corners, the
// first defect photo with 4 corners (one showing its defect, 3 relabelled
// good). train_one draws a row at view_w / sqrt(its label's count over
// all rows). label mode: each view group's factors sum to 1, and the good
// photos are drawn at 1/sqrt(15) (6 photos + 9 good views); photo mode:
// whole photos at their class's rate over photos alone (1/sqrt(6),
// 1/sqrt(2)), and each view group, all told, as often as its photo.
func TestViewWeights(t *testing.T) {
	needTorch(t)
	prog := `import sys; sys.path.insert(0, sys.argv[1]); import numpy as np, train
y = np.array([0] * 6 + [1] * 2)
owner = np.array([0, 0, 0, 0, 0, 0, 6, 6, 6, 6])
corner = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], bool)
yv = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 0])
ya = np.concatenate([y, yv])
rate = lambda w: w / np.sqrt(np.bincount(ya, minlength=2)[ya])
wl = train.view_weights(y, yv, owner, corner, 2, "label")
wp = train.view_weights(y, yv, owner, corner, 2, "photo")
rl, rp = rate(wl), rate(wp)
print(wl[8:10].sum(), wl[10:14].sum(), wl[14:].sum(), rl[0] * np.sqrt(15))
print(rp[0] * np.sqrt(6), rp[6] * np.sqrt(2), rp[8:10].sum() / rp[0], rp[10:14].sum() / rp[0], rp[14:].sum() / rp[6])`
	var lWin, lCorner, lDefCorner, lGood, pGood, pDefect, pWin, pCorner, pDefCorner float64
	runTrainPy(t, prog, &lWin, &lCorner, &lDefCorner, &lGood, &pGood, &pDefect, &pWin, &pCorner, &pDefCorner)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(lWin, 1) || !near(lCorner, 1) || !near(lDefCorner, 1) || !near(lGood, 1) {
		t.Errorf("label: view groups sum to %g, %g, %g (want 1 each); a good photo drawn at %g x 1/sqrt(15), want 1", lWin, lCorner, lDefCorner, lGood)
	}
	if !near(pGood, 1) || !near(pDefect, 1) {
		t.Errorf("photo: whole photos drawn at %g x 1/sqrt(6) (good) and %g x 1/sqrt(2) (defect), want 1 and 1", pGood, pDefect)
	}
	if !near(pWin, 1) || !near(pCorner, 1) || !near(pDefCorner, 1) {
		t.Errorf("photo: view groups drawn at %g, %g, %g times their photo, want 1 each", pWin, pCorner, pDefCorner)
	}
	wantUsage(t, "--view-draws is for --windows or --corners", "--view-draws", "photo")
	wantUsage(t, "--window-edge-chips must be in [0, 1]", "--arch", "segnet", "--windows", "0.25", "--view-draws", "photo", "--window-edge-chips", "1.5")
}

// TestCPUDescription: the manifest says which CPU and which torch kernels
// trained a model (the same seeds give the same weights only on the same
// kernels), and says "unknown" rather than fail where it cannot tell.
func TestCPUDescription(t *testing.T) {
	needTorch(t)
	cases := []struct{ cpuinfo, config, want string }{
		{"processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t: avx2\n", "  - CPU capability usage: AVX2\n", "AMD EPYC (torch kernels: AVX2)"},
		{"model name\t: Intel(R) Xeon(R) Platinum 8488C \nmodel name\t: second\n", "CPU capability usage: AVX512", "Intel(R) Xeon(R) Platinum 8488C (torch kernels: AVX512)"},
		{"", "", "unknown CPU (torch kernels: unknown)"},
	}
	// one Python run for every case: each prints its description on a line
	prog := "import sys; sys.path.insert(0, sys.argv[1]); import train\n"
	for _, tc := range cases {
		prog += fmt.Sprintf("print(train.cpu_description(%q, %q))\n", tc.cpuinfo, tc.config)
	}
	out, err := exec.Command(trainPython, "-c", prog, filepath.Dir(trainScript)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(got) != len(cases) {
		t.Fatalf("%d lines for %d cases:\n%s", len(got), len(cases), out)
	}
	for i, tc := range cases {
		if got[i] != tc.want {
			t.Errorf("cpu_description(%q, %q) = %q, want %q", tc.cpuinfo, tc.config, got[i], tc.want)
		}
	}
}

// TestKeepFreedMemory: train.py's malloc setting takes on this C library
// and does what it says. Before it, a 64 MiB block is a fresh mmap (glibc
// counts it in mallinfo2's hblks while it lives); after it, the same block
// comes from the heap, which keeps what is freed for the next step.
func TestKeepFreedMemory(t *testing.T) {
	needTorch(t)
	prog := `import ctypes, sys
sys.path.insert(0, sys.argv[1])
import train
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
def mmapped():
    n0 = libc.mallinfo2().hblks
    b = ctypes.create_string_buffer(64 << 20)
    n1 = libc.mallinfo2().hblks
    del b
    return n1 - n0
before = mmapped()
ok = train.keep_freed_memory()
print(before, int(ok), mmapped())
`
	var before, ok, after int
	runTrainPy(t, prog, &before, &ok, &after)
	if ok != 1 {
		t.Fatalf("keep_freed_memory() = False on this glibc")
	}
	if before != 1 || after != 0 {
		t.Errorf("mmapped blocks for a 64 MiB buffer: %d before keep_freed_memory, %d after; want 1 and 0", before, after)
	}
}
