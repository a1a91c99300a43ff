package camera

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

// DefaultPoll is how often a watched folder is scanned for new files.
const DefaultPoll = 200 * time.Millisecond

// imageExts are the file extensions a folder source reads (lower case).
var imageExts = []string{".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp"}

// FolderSource reads image files from a folder, in name order. Images in
// class-named subfolders (one level deep, as in the magnetic-tile dataset)
// carry the subfolder name as ground truth; defect masks NAME_mask.png
// beside an image are loaded as the frame's Mask and never read as images.
// Hidden files and files with other extensions are ignored.
//
// With watch, files present at open are read first, then new files as they
// appear; a new file is read once its size is unchanged between two scans,
// so a file still being written is not read half-done. With loop, the
// folder is read again from the start at the end.
type FolderSource struct {
	id    string
	root  string
	spec  SourceSpec
	log   *slog.Logger
	poll  time.Duration
	queue []folderEntry // to read, in order
	all   []folderEntry // every image, for loop
	seen  map[string]int64
	// candidates: watched files not yet stable, with the size last seen
	pending map[string]int64
	seq     uint64
	closed  atomic.Bool
}

var _ Source = (*FolderSource)(nil)

type folderEntry struct {
	path, rel, class string
	size             int64
}

// NewFolderSource opens the folder spec.Path. It fails when the folder does
// not exist, or holds no images and is not watched.
func NewFolderSource(id string, spec SourceSpec, log *slog.Logger) (*FolderSource, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := os.Stat(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("camera %s: open folder: %w", id, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("camera %s: source.path %s is not a folder; use kind file for a video", id, spec.Path)
	}
	poll := spec.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	s := &FolderSource{id: id, root: spec.Path, spec: spec, log: log, poll: poll,
		seen: map[string]int64{}, pending: map[string]int64{}}
	entries, err := s.scan()
	if err != nil {
		return nil, err
	}
	if spec.Watch {
		for _, e := range entries {
			s.pending[e.rel] = e.size
		}
	} else {
		if len(entries) == 0 {
			return nil, fmt.Errorf("camera %s: folder %s holds no images (%s); add images or set source.watch to wait for them",
				id, spec.Path, strings.Join(imageExts, " "))
		}
		s.queue = entries
		s.all = entries
	}
	return s, nil
}

// scan lists the images in the folder and its immediate subfolders.
func (s *FolderSource) scan() ([]folderEntry, error) {
	var out []folderEntry
	add := func(dir, class string) error {
		des, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("camera %s: read folder: %w", s.id, err)
		}
		for _, de := range des {
			name := de.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			if de.IsDir() {
				if class == "" && dir == s.root {
					if err := s.addDir(&out, filepath.Join(dir, name), name); err != nil {
						return err
					}
				}
				continue
			}
			if e, ok := s.entry(dir, name, class, de); ok {
				out = append(out, e)
			}
		}
		return nil
	}
	if err := add(s.root, ""); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b folderEntry) int { return strings.Compare(a.rel, b.rel) })
	return out, nil
}

func (s *FolderSource) addDir(out *[]folderEntry, dir, class string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("camera %s: read folder: %w", s.id, err)
	}
	for _, de := range des {
		if de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		if e, ok := s.entry(dir, de.Name(), class, de); ok {
			*out = append(*out, e)
		}
	}
	return nil
}

func (s *FolderSource) entry(dir, name, class string, de os.DirEntry) (folderEntry, bool) {
	ext := strings.ToLower(filepath.Ext(name))
	if !slices.Contains(imageExts, ext) || isMaskName(name) {
		return folderEntry{}, false
	}
	info, err := de.Info()
	if err != nil { // removed since listed
		return folderEntry{}, false
	}
	p := filepath.Join(dir, name)
	rel, _ := filepath.Rel(s.root, p)
	return folderEntry{path: p, rel: rel, class: class, size: info.Size()}, true
}

// isMaskName reports whether name is a defect mask (NAME_mask.EXT).
func isMaskName(name string) bool {
	base := strings.TrimSuffix(name, filepath.Ext(name))
	return strings.HasSuffix(strings.ToLower(base), "_mask")
}

// maskPath returns the mask file beside an image, if there is one.
func maskPath(p string) string {
	base := strings.TrimSuffix(p, filepath.Ext(p))
	m := base + "_mask.png"
	if _, err := os.Stat(m); err == nil {
		return m
	}
	return ""
}

// Read returns the next image. See Source.Read; a corrupt or empty file
// gives an error wrapping ErrDecode that names it.
func (s *FolderSource) Read(ctx context.Context) (*Frame, error) {
	for {
		if s.closed.Load() {
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(s.queue) > 0 {
			e := s.queue[0]
			s.queue = s.queue[1:]
			return s.decode(e)
		}
		switch {
		case s.spec.Watch:
			if err := sleepCtx(ctx, s.poll); err != nil {
				return nil, err
			}
			if err := s.rescan(); err != nil {
				return nil, err
			}
		case s.spec.Loop && len(s.all) > 0:
			s.queue = s.all
		default:
			return nil, io.EOF
		}
	}
}

// rescan queues watched files that appeared and stopped growing.
func (s *FolderSource) rescan() error {
	entries, err := s.scan()
	if err != nil {
		return err
	}
	present := make(map[string]struct{}, len(entries))
	for _, e := range entries {
		present[e.rel] = struct{}{}
		if _, done := s.seen[e.rel]; done {
			continue
		}
		if last, ok := s.pending[e.rel]; ok && last == e.size {
			delete(s.pending, e.rel)
			s.seen[e.rel] = e.size
			s.queue = append(s.queue, e)
			continue
		}
		s.pending[e.rel] = e.size
	}
	// Forget files that are gone, so the maps stay as small as the folder.
	for rel := range s.seen {
		if _, ok := present[rel]; !ok {
			delete(s.seen, rel)
		}
	}
	for rel := range s.pending {
		if _, ok := present[rel]; !ok {
			delete(s.pending, rel)
		}
	}
	return nil
}

func (s *FolderSource) decode(e folderEntry) (*Frame, error) {
	s.seq++
	info, err := os.Stat(e.path)
	if err != nil {
		return nil, fmt.Errorf("camera %s: %s: %w: %v", s.id, e.rel, ErrDecode, err)
	}
	if info.Size() == 0 {
		return nil, fmt.Errorf("camera %s: %s: %w: empty file", s.id, e.rel, ErrDecode)
	}
	img := gocv.IMRead(e.path, gocv.IMReadAnyColor)
	if img.Empty() {
		img.Close()
		return nil, fmt.Errorf("camera %s: %s: %w: not a readable image", s.id, e.rel, ErrDecode)
	}
	f := &Frame{Mat: img, CameraID: s.id, Seq: s.seq, Time: time.Now(), Truth: e.class,
		Meta: map[string]string{"kind": KindFolder, "file": e.rel, "path": e.path, "index": strconv.FormatUint(s.seq-1, 10)}}
	if mp := maskPath(e.path); mp != "" {
		m := gocv.IMRead(mp, gocv.IMReadGrayScale)
		if m.Empty() || m.Rows() != img.Rows() || m.Cols() != img.Cols() {
			m.Close()
			s.log.Debug("mask ignored: unreadable or not the image's size", "mask", mp)
		} else {
			f.Mask = m
			f.Meta["mask"] = mp
		}
	}
	return f, nil
}

// Info describes the folder.
func (s *FolderSource) Info() SourceInfo {
	return SourceInfo{Kind: KindFolder, Name: s.root}
}

// Close stops the source; later Reads return ErrClosed.
func (s *FolderSource) Close() error {
	s.closed.Store(true)
	return nil
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
