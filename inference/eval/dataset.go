package eval

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Sentinel errors of this package.
var (
	// ErrDataset: the labelled folder cannot be evaluated (missing, no
	// class folders, no images, a class the model does not know).
	ErrDataset = errors.New("bad evaluation dataset")
	// ErrImage: an image file that cannot be decoded.
	ErrImage = errors.New("unreadable image")
)

// Sample is one labelled image.
type Sample struct {
	Path  string // the file
	Rel   string // CLASS/NAME, with '/'
	Label string // the class folder
}

// Dataset is a labelled folder.
type Dataset struct {
	Root    string
	Classes []string // class folders with at least one image, sorted
	Samples []Sample // sorted by Rel
}

var imageExt = []string{".jpg", ".jpeg", ".png", ".bmp"}

// IsImage reports whether name is an image of a dataset: a .jpg, .jpeg,
// .png or .bmp whose stem does not end in _mask (defect masks).
func IsImage(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	if !slices.Contains(imageExt, ext) || strings.HasPrefix(name, ".") {
		return false
	}
	return !strings.HasSuffix(strings.TrimSuffix(name, filepath.Ext(name)), "_mask")
}

// ScanFolder lists ROOT/CLASS/NAME images (symbolic links followed). Class
// folders without images are skipped (an evaluation split may lack a rare
// class); a root with no images at all is an error wrapping ErrDataset.
func ScanFolder(root string) (*Dataset, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDataset, err)
	}
	ds := &Dataset{Root: root}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDataset, err)
		}
		n := 0
		for _, f := range files {
			if !IsImage(f.Name()) {
				continue
			}
			ds.Samples = append(ds.Samples, Sample{Path: filepath.Join(dir, f.Name()), Rel: e.Name() + "/" + f.Name(), Label: e.Name()})
			n++
		}
		if n > 0 {
			ds.Classes = append(ds.Classes, e.Name())
		}
	}
	if len(ds.Samples) == 0 {
		return nil, fmt.Errorf("%w: %s has no images in class folders (want %s/CLASS/NAME.jpg)", ErrDataset, root, root)
	}
	slices.Sort(ds.Classes)
	slices.SortFunc(ds.Samples, func(a, b Sample) int { return strings.Compare(a.Rel, b.Rel) })
	return ds, nil
}

// CheckClasses returns an error wrapping ErrDataset naming every class
// folder of ds that is not one of the model's labels.
func (ds *Dataset) CheckClasses(labels []string) error {
	var unknown []string
	for _, c := range ds.Classes {
		if !slices.Contains(labels, c) {
			unknown = append(unknown, c)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: %s has class folder(s) %s that the model does not know (its labels: %s)",
			ErrDataset, ds.Root, strings.Join(unknown, ", "), strings.Join(labels, ", "))
	}
	return nil
}
