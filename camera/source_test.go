package camera

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

func TestFolderSource(t *testing.T) {
	noLeakedMats(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "crack", "b.jpg"), testJPEG(t, 40, 30, 1))
	mask := gocv.NewMatWithSize(30, 40, gocv.MatTypeCV8U)
	gocv.IMWrite(filepath.Join(dir, "crack", "b_mask.png"), mask)
	mask.Close()
	writeFile(t, filepath.Join(dir, "free", "a.jpg"), testJPEG(t, 40, 30, 2))
	writeFile(t, filepath.Join(dir, "free", "c_corrupt.jpg"), []byte("\xff\xd8\xff\xe0 this is not really a jpeg"))
	writeFile(t, filepath.Join(dir, "free", "d_empty.jpg"), nil)
	writeFile(t, filepath.Join(dir, "free", "notes.txt"), []byte("not an image"))
	writeFile(t, filepath.Join(dir, "top.jpg"), testJPEG(t, 40, 30, 3))

	src, err := OpenSource(Spec{ID: "f", Source: SourceSpec{Kind: KindFolder, Path: dir}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	type result struct {
		file, truth string
		decodeErr   bool
		mask        bool
	}
	want := []result{
		{file: "crack/b.jpg", truth: "crack", mask: true},
		{file: "free/a.jpg", truth: "free"},
		{decodeErr: true},
		{decodeErr: true},
		{file: "top.jpg"},
	}
	ctx := testCtx(t)
	for i, w := range want {
		f, err := src.Read(ctx)
		if w.decodeErr {
			if !errors.Is(err, ErrDecode) || f != nil {
				t.Fatalf("read %d: got %v, %v; want ErrDecode", i, f, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if f.Meta["file"] != filepath.FromSlash(w.file) || f.Truth != w.truth || f.HasImage() != true || f.Mat.Cols() != 40 {
			t.Errorf("read %d: file %q truth %q size %dx%d; want %s truth %q 40x30", i, f.Meta["file"], f.Truth, f.Mat.Cols(), f.Mat.Rows(), w.file, w.truth)
		}
		if got := f.Mask.Ptr() != nil && !f.Mask.Empty(); got != w.mask {
			t.Errorf("read %d: mask loaded %v, want %v", i, got, w.mask)
		}
		f.Close()
	}
	if f, err := src.Read(ctx); !errors.Is(err, io.EOF) {
		f.Close()
		t.Fatalf("after the last image: %v, want io.EOF", err)
	}
}

func TestFolderSourceErrors(t *testing.T) {
	if _, err := OpenSource(Spec{ID: "f", Source: SourceSpec{Kind: KindFolder, Path: filepath.Join(t.TempDir(), "missing")}}, Options{}); err == nil {
		t.Error("a missing folder opened")
	}
	if _, err := OpenSource(Spec{ID: "f", Source: SourceSpec{Kind: KindFolder, Path: t.TempDir()}}, Options{}); err == nil {
		t.Error("an empty folder without watch opened")
	}
}

func TestFolderSourceWatch(t *testing.T) {
	noLeakedMats(t)
	dir := t.TempDir()
	src, err := NewFolderSource("w", SourceSpec{Kind: KindFolder, Path: dir, Watch: true, Poll: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	go func() {
		time.Sleep(30 * time.Millisecond)
		// written under a hidden name and renamed, as vendor tools do
		tmp := filepath.Join(dir, ".part-new.jpg")
		os.WriteFile(tmp, testJPEG(t, 32, 32, 5), 0o644)
		os.Rename(tmp, filepath.Join(dir, "new.jpg"))
	}()
	f, err := src.Read(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Meta["file"] != "new.jpg" || f.Mat.Cols() != 32 {
		t.Errorf("got %q %dx%d, want new.jpg 32x32", f.Meta["file"], f.Mat.Cols(), f.Mat.Rows())
	}
}

func TestFileSource(t *testing.T) {
	noLeakedMats(t)
	path := filepath.Join(t.TempDir(), "line.avi")
	writeVideo(t, path, 6, 64, 48)
	ctx := testCtx(t)

	src, err := OpenSource(Spec{ID: "v", Source: SourceSpec{Kind: KindFile, Path: path, Pace: "fast"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if info := src.Info(); info.Width != 64 || info.Height != 48 || info.FPS != 25 || info.Live {
		t.Errorf("info %+v; want 64x48 at 25 fps, not live", info)
	}
	for i := range 6 {
		f, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Mat.Cols() != 64 || f.Mat.Rows() != 48 || f.Mat.Channels() != 3 {
			t.Errorf("frame %d is %dx%dx%d", i, f.Mat.Cols(), f.Mat.Rows(), f.Mat.Channels())
		}
		f.Close()
	}
	if _, err := src.Read(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("after 6 frames: %v, want io.EOF", err)
	}
	src.Close()
	if _, err := src.Read(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}

	// loop, paced in real time: 15 frames means two full passes
	src, err = OpenSource(Spec{ID: "v", Source: SourceSpec{Kind: KindFile, Path: path, Pace: "realtime", Loop: true}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var last *Frame
	for i := range 15 {
		f, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("looped frame %d: %v", i, err)
		}
		last.Close()
		last = f
	}
	if last.Meta["pass"] != "2" || last.Meta["index"] != "2" {
		t.Errorf("frame 15: pass %s index %s, want pass 2 index 2", last.Meta["pass"], last.Meta["index"])
	}
	last.Close()

	if _, err := OpenSource(Spec{ID: "v", Source: SourceSpec{Kind: KindFile, Path: filepath.Join(t.TempDir(), "none.avi")}}, Options{}); err == nil {
		t.Error("a missing video file opened")
	}
}

func TestURLSourceMJPEG(t *testing.T) {
	noLeakedMats(t)
	srv := startServerAt(t, "127.0.0.1:0", mjpegHandler(testJPEG(t, 80, 60, 1), 5*time.Millisecond, nil))
	defer closeServer(srv)
	src, err := OpenSource(Spec{ID: "u", Source: SourceSpec{Kind: KindURL, URL: srv.URL + "/stream.mjpg"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if !src.Info().Live {
		t.Error("a url source must be live")
	}
	ctx := testCtx(t)
	var prev time.Time
	for i := range 5 {
		f, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Mat.Cols() != 80 || f.Mat.Rows() != 60 {
			t.Errorf("frame %d is %dx%d, want 80x60", i, f.Mat.Cols(), f.Mat.Rows())
		}
		if !f.Time.After(prev) {
			t.Errorf("frame %d was captured before the one read before it", i)
		}
		prev = f.Time
		f.Close()
	}
}

func TestURLSourceDown(t *testing.T) {
	srv := startServerAt(t, "127.0.0.1:0", http.NotFoundHandler())
	url := srv.URL + "/stream.mjpg"
	srv.Close()
	_, err := OpenSource(Spec{ID: "u", Source: SourceSpec{Kind: KindURL, URL: url}}, Options{})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("a stream that is down: %v, want ErrUnavailable", err)
	}
	if _, err := OpenSource(Spec{ID: "d", Source: SourceSpec{Kind: KindDevice, Device: "/dev/video-none"}}, Options{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a missing device: %v, want ErrUnavailable", err)
	}
}

func TestSyntheticSource(t *testing.T) {
	noLeakedMats(t)
	src, err := NewSyntheticSource("s", testSynth())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	g, _ := NewGenerator(testSynth())
	tile := g.NewTile()
	for i := range uint64(4) {
		f, err := src.Read(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		g.Generate(i, tile)
		data, _ := f.Mat.DataPtrUint8()
		mask, _ := f.Mask.DataPtrUint8()
		if f.Truth != tile.Class || string(data) != string(tile.Pix) || string(mask) != string(tile.Mask) {
			t.Errorf("frame %d differs from the generator's part %d", i, i)
		}
		f.Close()
	}
}

func TestTransform(t *testing.T) {
	noLeakedMats(t)
	tests := []struct {
		name         string
		roi          *Rect
		rotate       int
		wantW, wantH int
		wantErr      bool
	}{
		{"none", nil, 0, 100, 50, false},
		{"crop", &Rect{X: 10, Y: 5, W: 30, H: 20}, 0, 30, 20, false},
		{"crop and 90", &Rect{X: 10, Y: 5, W: 30, H: 20}, 90, 20, 30, false},
		{"180", nil, 180, 100, 50, false},
		{"270", nil, 270, 50, 100, false},
		{"clipped", &Rect{X: 90, Y: 40, W: 30, H: 30}, 0, 10, 10, false},
		{"outside", &Rect{X: 200, Y: 0, W: 10, H: 10}, 0, 100, 50, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Frame{Mat: gocv.NewMatWithSize(50, 100, gocv.MatTypeCV8UC3), Mask: gocv.NewMatWithSize(50, 100, gocv.MatTypeCV8U)}
			defer f.Close()
			// mark the top-left pixel of the ROI to check where it lands
			err := Transform(f, tt.roi, tt.rotate)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrDecode)) {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if f.Mat.Cols() != tt.wantW || f.Mat.Rows() != tt.wantH || f.Mask.Cols() != tt.wantW || f.Mask.Rows() != tt.wantH {
				t.Errorf("got image %dx%d mask %dx%d, want %dx%d", f.Mat.Cols(), f.Mat.Rows(), f.Mask.Cols(), f.Mask.Rows(), tt.wantW, tt.wantH)
			}
		})
	}
	// rotation moves pixels clockwise: top-left goes to top-right at 90
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV8U)
	m.SetUCharAt(0, 0, 200)
	f := &Frame{Mat: m}
	defer f.Close()
	if err := Transform(f, nil, 90); err != nil {
		t.Fatal(err)
	}
	if f.Mat.Cols() != 2 || f.Mat.GetUCharAt(0, 1) != 200 {
		t.Errorf("90 degrees clockwise: top-left pixel did not move to the top-right")
	}
}

func TestBackoff(t *testing.T) {
	r := RetrySpec{Initial: 100 * time.Millisecond, Max: time.Second}
	for _, tt := range []struct {
		attempt int
		want    time.Duration
	}{{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 800 * time.Millisecond}, {4, time.Second}, {100, time.Second}, {5000, time.Second}} {
		if got := Backoff(r, tt.attempt); got != tt.want {
			t.Errorf("Backoff(attempt %d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}
