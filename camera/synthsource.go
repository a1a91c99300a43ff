package camera

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

// SyntheticSource is the synthetic tile line as a Source: every Read draws
// the next part with a Generator into a reused buffer and copies it into a
// new Mat (gray) with its mask. It never blocks and never fails until
// closed; pacing is the Camera's job (trigger.fps).
type SyntheticSource struct {
	id     string
	opt    SyntheticSpec
	gen    *Generator
	tile   *Tile
	next   uint64
	closed atomic.Bool
}

var _ Source = (*SyntheticSource)(nil)

// NewSyntheticSource returns the synthetic line for camera id.
func NewSyntheticSource(id string, opt SyntheticSpec) (*SyntheticSource, error) {
	gen, err := NewGenerator(opt)
	if err != nil {
		return nil, fmt.Errorf("camera %s: %w", id, err)
	}
	return &SyntheticSource{id: id, opt: opt, gen: gen, tile: gen.NewTile()}, nil
}

// Read draws the next part. See Source.Read.
func (s *SyntheticSource) Read(ctx context.Context) (*Frame, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i := s.next
	s.next++
	s.gen.Generate(i, s.tile)
	img, err := matFromGray(s.tile.Pix, s.tile.W, s.tile.H)
	if err != nil {
		return nil, fmt.Errorf("camera %s: %w", s.id, err)
	}
	mask, err := matFromGray(s.tile.Mask, s.tile.W, s.tile.H)
	if err != nil {
		img.Close()
		return nil, fmt.Errorf("camera %s: %w", s.id, err)
	}
	return &Frame{
		Mat: img, Mask: mask, CameraID: s.id, Seq: i + 1, Time: time.Now(), Truth: s.tile.Class,
		Meta: map[string]string{
			"kind": KindSynthetic, "index": strconv.FormatUint(i, 10),
			"seed": strconv.FormatInt(s.opt.Seed, 10), "exposure": strconv.FormatFloat(s.tile.Exposure, 'f', 3, 64),
		},
	}, nil
}

// Info describes the synthetic line.
func (s *SyntheticSource) Info() SourceInfo {
	return SourceInfo{Kind: KindSynthetic, Name: "synthetic", Width: s.opt.Size, Height: s.opt.Size}
}

// Close stops the source; later Reads return ErrClosed.
func (s *SyntheticSource) Close() error {
	s.closed.Store(true)
	return nil
}

// matFromGray copies a row-major 8-bit gray image into a new Mat that
// owns its memory (OpenCV's, not Go's).
func matFromGray(pix []byte, w, h int) (gocv.Mat, error) {
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8U)
	data, err := m.DataPtrUint8()
	if err != nil || len(data) != len(pix) {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("new %dx%d gray mat: %v", w, h, err)
	}
	copy(data, pix)
	return m, nil
}
