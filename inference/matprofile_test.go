//go:build matprofile

package inference

import (
	"context"
	"image"
	"testing"

	"gocv.io/x/gocv"
)

// TestNoMatLeaks runs every model kind, a bad frame and a hot swap, closes
// everything and checks that no gocv.Mat is left open. Run with
// go test -tags matprofile ./inference/.
func TestNoMatLeaks(t *testing.T) {
	base := gocv.MatProfile.Count()
	func() {
		rt := openRuntime(t)
		for _, dir := range []string{"classify", "anomaly", "detect", "nan"} {
			pkg, err := LoadPackage(modelDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			e, err := Open(rt, pkg, Config{Batch: 2})
			if err != nil {
				t.Fatal(err)
			}
			src := gocv.NewMatWithSize(90, 120, gocv.MatTypeCV8UC3)
			e.Run(context.Background(), Frame{Image: src, ROI: image.Rect(5, 5, 100, 80)})
			e.Run(context.Background(), Frame{Image: src, ROI: image.Rect(100, 5, 200, 80)}) // bad ROI
			if dir == "classify" {
				int8, err := LoadPackage(modelDir("classify-int8"))
				if err != nil {
					t.Fatal(err)
				}
				if err := e.Swap(int8); err != nil {
					t.Fatal(err)
				}
				e.Run(context.Background(), Frame{Image: src})
			}
			e.Close()
			src.Close()
		}
	}()
	if n := gocv.MatProfile.Count() - base; n != 0 {
		var b []byte
		gocv.MatProfile.WriteTo(writerFunc(func(p []byte) (int, error) { b = append(b, p...); return len(p), nil }), 1)
		t.Fatalf("%d Mats leaked:\n%s", n, b)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
