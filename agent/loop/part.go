package loop

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/linesight/linesight/agent/pipeline"
	"github.com/linesight/linesight/camera"
)

// partPrefix starts the part IDs Tag gives synthetic parts.
const partPrefix = "syn-"

// PartID names part index of the synthetic line with that seed:
// "syn-<seed>-<index>".
func PartID(seed int64, index uint64) string {
	return partPrefix + strconv.FormatInt(seed, 10) + "-" + strconv.FormatUint(index, 10)
}

// ParsePartID reads a PartID.
func ParsePartID(id string) (seed int64, index uint64, err error) {
	rest, ok := strings.CutPrefix(id, partPrefix)
	// The index follows the last '-' (a negative seed has its own).
	if k := strings.LastIndexByte(rest, '-'); ok && k > 0 {
		if seed, err = strconv.ParseInt(rest[:k], 10, 64); err == nil {
			if index, err = strconv.ParseUint(rest[k+1:], 10, 64); err == nil {
				return seed, index, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("%w: %q is not a synthetic part ID (want %s<seed>-<index>)", ErrPartID, id, partPrefix)
}

// tagged is a camera whose synthetic frames carry their part ID.
type tagged struct{ pipeline.Source }

// Tag wraps a camera so that every synthetic frame without a part ID gets
// PartID(seed, index) from the source's metadata: the line's equivalent of
// a barcode on the part. Other frames pass unchanged. The pipeline records
// the part ID with the inspection; the model never sees it.
func Tag(s pipeline.Source) pipeline.Source { return tagged{s} }

// Next implements pipeline.Source.
func (t tagged) Next(ctx context.Context) (*camera.Frame, error) {
	f, err := t.Source.Next(ctx)
	if f == nil || f.PartID != "" || f.Meta["kind"] != camera.KindSynthetic {
		return f, err
	}
	seed, err1 := strconv.ParseInt(f.Meta["seed"], 10, 64)
	index, err2 := strconv.ParseUint(f.Meta["index"], 10, 64)
	if err1 == nil && err2 == nil {
		f.PartID = PartID(seed, index)
	}
	return f, err
}

// Truth knows the class of every part of one synthetic line: the
// generator is deterministic in its seed and the part's index, so the
// class is drawn again rather than carried along with the frame.
type Truth struct {
	mu   sync.Mutex
	seed int64
	gen  *camera.Generator
}

// NewTruth returns the ground truth of the synthetic line spec describes.
func NewTruth(spec camera.SyntheticSpec) (*Truth, error) {
	gen, err := camera.NewGenerator(spec)
	if err != nil {
		return nil, fmt.Errorf("ground truth: %w", err)
	}
	return &Truth{seed: spec.Seed, gen: gen}, nil
}

// Class returns the class of the part named by a PartID of this line.
func (t *Truth) Class(partID string) (string, error) {
	seed, index, err := ParsePartID(partID)
	if err != nil {
		return "", err
	}
	if seed != t.seed {
		return "", fmt.Errorf("%w: part %s is from the line with seed %d, not %d", ErrPartID, partID, seed, t.seed)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gen.ClassOf(index), nil
}
