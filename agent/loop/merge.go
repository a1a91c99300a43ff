package loop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/linesight/linesight/inference/eval"
	"github.com/linesight/linesight/sync/fleet"
)

// TrainingSet counts what MergeTrainingSet linked, per class.
type TrainingSet struct {
	Base, Collected map[string]int
}

// Total is the number of images.
func (t TrainingSet) Total() int {
	n := 0
	for _, m := range []map[string]int{t.Base, t.Collected} {
		for _, v := range m {
			n += v
		}
	}
	return n
}

// MergeTrainingSet builds the retraining folder dst (which must not exist)
// as symbolic links: every image of the base dataset (base/CLASS/NAME.jpg,
// the data the current model was trained on: a plant keeps its training
// set and adds to it) and the collected samples in records (the latest
// revision of each item, with an image; collected is the collector's
// dataset folder), named line_<item>.jpg so they never collide.
func MergeTrainingSet(dst, base, collected string, records []fleet.Record) (TrainingSet, error) {
	ts := TrainingSet{Base: map[string]int{}, Collected: map[string]int{}}
	if _, err := os.Stat(dst); err == nil {
		return ts, fmt.Errorf("training set %s exists already", dst)
	}
	link := func(class, name, target string) error {
		target, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		dir := filepath.Join(dst, class)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("training set: %w", err)
		}
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("training set: %w", err)
		}
		return nil
	}
	classes, err := os.ReadDir(base)
	if err != nil {
		return ts, fmt.Errorf("training set: base %w", err)
	}
	for _, c := range classes {
		if !c.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(base, c.Name()))
		if err != nil {
			return ts, fmt.Errorf("training set: %w", err)
		}
		for _, f := range files {
			if !f.Type().IsRegular() || !eval.IsImage(f.Name()) || strings.Contains(f.Name(), "_mask.") {
				continue
			}
			if err := link(c.Name(), f.Name(), filepath.Join(base, c.Name(), f.Name())); err != nil {
				return ts, err
			}
			ts.Base[c.Name()]++
		}
	}
	latest := map[string]fleet.Record{}
	for _, r := range records {
		if cur, ok := latest[r.ItemID]; !ok || r.Revision > cur.Revision {
			latest[r.ItemID] = r
		}
	}
	for _, r := range latest {
		if r.File == "" || r.Stale {
			continue
		}
		if err := link(r.Class, "line_"+filepath.Base(r.File), filepath.Join(collected, filepath.FromSlash(r.File))); err != nil {
			return ts, err
		}
		ts.Collected[r.Class]++
	}
	return ts, nil
}
