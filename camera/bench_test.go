package camera

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// BenchmarkSourceRead measures capture-and-decode throughput per source
// kind at 256x256: every Read yields a decoded Mat (synthetic: generated;
// folder: JPEG files decoded; file: MJPG video decoded; url: HTTP MJPEG
// decoded by FFmpeg, served as fast as the reader takes it).
func BenchmarkSourceRead(b *testing.B) {
	const size = 256
	dir := b.TempDir()
	g, _ := NewGenerator(SyntheticSpec{Seed: 1, Size: size, DefectRate: 0.2, ExposureMin: 1, ExposureMax: 1})
	tile := g.NewTile()
	var jpg []byte
	for i := range 50 {
		g.Generate(uint64(i), tile)
		m, _ := matFromGray(tile.Pix, size, size)
		buf, _ := gocv.IMEncode(gocv.JPEGFileExt, m)
		jpg = append(jpg[:0], buf.GetBytes()...)
		buf.Close()
		m.Close()
		writeFile(b, filepath.Join(dir, "img", fmt.Sprintf("%03d.jpg", i)), jpg)
	}
	video := filepath.Join(dir, "line.avi")
	writeVideo(b, video, 100, size, size)
	srv := startServerAt(b, "127.0.0.1:0", mjpegHandler(jpg, 0, nil))
	defer closeServer(srv)

	cases := []struct {
		name string
		spec SourceSpec
	}{
		{"synthetic", SourceSpec{Kind: KindSynthetic, Synthetic: SyntheticSpec{Seed: 1, Size: size, DefectRate: 0.2, ExposureMin: 0.8, ExposureMax: 1.2}}},
		{"folder", SourceSpec{Kind: KindFolder, Path: filepath.Join(dir, "img"), Loop: true}},
		{"file", SourceSpec{Kind: KindFile, Path: video, Loop: true, Pace: "fast"}},
		{"url-mjpeg", SourceSpec{Kind: KindURL, URL: srv.URL + "/s.mjpg"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			src, err := OpenSource(Spec{ID: "bench", Source: c.spec}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.ResetTimer()
			for b.Loop() {
				f, err := src.Read(ctx)
				if errors.Is(err, ErrDecode) {
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}
