package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linesight/linesight/sync/wire"
)

// ManifestName is the provenance file in the dataset directory.
const ManifestName = "manifest.jsonl"

// Record is one line of manifest.jsonl: where a labelled sample came from.
type Record struct {
	ID         string        `json:"id"` // the sample's message ID ("label-<label ID>")
	LabelID    string        `json:"label_id"`
	ItemID     string        `json:"item_id"`
	Class      string        `json:"class"`
	File       string        `json:"file,omitempty"` // CLASS/<item ID>.jpg, relative to the dataset; empty: no image, or stale
	SHA256     string        `json:"sha256,omitempty"`
	Site       string        `json:"site"`
	Device     string        `json:"device"`
	Camera     string        `json:"camera"`
	Time       time.Time     `json:"time"` // when the part was inspected
	LabelledAt time.Time     `json:"labelled_at"`
	By         string        `json:"by"` // inspector
	Revision   int           `json:"revision"`
	Supersedes string        `json:"supersedes,omitempty"`
	Model      wire.ModelRef `json:"model"`
	Suggested  string        `json:"suggested,omitempty"` // the model's top class
	Verdict    string        `json:"model_verdict,omitempty"`
	// Stale: a newer revision of this item's label was already written, so
	// this one only has its line.
	Stale    bool      `json:"stale,omitempty"`
	Received time.Time `json:"received"`
}

// Incoming is a decoded sample with where it came from.
type Incoming struct {
	ID           string
	Site, Device string
	Sample       wire.Sample
}

// Dataset is the training folder: dataset_dir/<CLASS>/<item ID>.jpg plus
// manifest.jsonl. Several collectors (processes) may share one directory:
// writes hold an exclusive flock on the manifest and first read the lines
// the others appended, so each sample is written exactly once.
type Dataset struct {
	dir string
	mu  sync.Mutex
	f   *os.File
	off int64
	// seen: message IDs in the manifest; items: the current revision per item.
	seen  map[string]bool
	items map[string]Record
}

// OpenDataset opens (creating) a dataset directory and reads its manifest.
func OpenDataset(dir string) (*Dataset, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	spreadClasses(dir)
	f, err := os.OpenFile(filepath.Join(dir, ManifestName), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dataset manifest: %w", err)
	}
	d := &Dataset{dir: dir, f: f, seen: map[string]bool{}, items: map[string]Record{}}
	if err := d.locked(func() error { return nil }); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the manifest.
func (d *Dataset) Close() error { return d.f.Close() }

// Dir is the dataset directory.
func (d *Dataset) Dir() string { return d.dir }

// Len is the number of distinct samples (message IDs) in the manifest.
func (d *Dataset) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

// Classes counts the current label of every item by class.
func (d *Dataset) Classes() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[string]int{}
	for _, r := range d.items {
		m[r.Class]++
	}
	return m
}

// locked runs fn holding the process mutex and the manifest's flock, after
// reading what other processes appended.
func (d *Dataset) locked(fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := syscall.Flock(int(d.f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("dataset lock: %w", err)
	}
	defer syscall.Flock(int(d.f.Fd()), syscall.LOCK_UN)
	if err := d.catchUp(); err != nil {
		return err
	}
	return fn()
}

// catchUp reads manifest lines after d.off. A torn last line (a crash in
// the middle of an append) is cut off.
func (d *Dataset) catchUp() error {
	st, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("dataset manifest: %w", err)
	}
	if st.Size() <= d.off {
		return nil
	}
	data := make([]byte, st.Size()-d.off)
	if _, err := d.f.ReadAt(data, d.off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read manifest: %w", err)
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	if end < len(data) {
		if err := d.f.Truncate(d.off + int64(end)); err != nil {
			return fmt.Errorf("cut torn manifest line: %w", err)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data[:end]))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line this version does not understand is kept, not used
		}
		d.note(r)
	}
	d.off += int64(end)
	return nil
}

func (d *Dataset) note(r Record) {
	d.seen[r.ID] = true
	if cur, ok := d.items[r.ItemID]; !ok || r.Revision > cur.Revision {
		d.items[r.ItemID] = r
	}
}

// Write stores a batch of samples: each image (temp file, fsync, rename,
// directory fsync), then their manifest lines in one append and fsync.
// Samples already in the manifest are skipped. It returns how many were
// new. On error nothing is acknowledged and redelivery writes the same bytes.
func (d *Dataset) Write(batch []Incoming, now time.Time) (int, error) {
	var added int
	err := d.locked(func() error {
		var lines bytes.Buffer
		dirs := map[string]bool{}
		var remove []string
		var recs []Record
		var files []file
		for _, in := range batch {
			s := in.Sample
			if d.seen[in.ID] {
				continue
			}
			r := Record{
				ID: in.ID, LabelID: s.LabelID, ItemID: s.ItemID, Class: s.Class, Site: in.Site, Device: in.Device,
				Camera: s.Camera, Time: s.Inspection.Time, LabelledAt: s.At, By: s.By, Revision: s.Revision,
				Supersedes: s.Supersedes, Model: s.Model, Suggested: s.Suggested, Verdict: s.ModelVerdict, Received: now.UTC(),
			}
			cur, had := d.items[s.ItemID]
			switch {
			case had && cur.Revision > s.Revision:
				r.Stale = true
			case s.Image != nil:
				r.File = filepath.ToSlash(filepath.Join(s.Class, s.ItemID+".jpg"))
				r.SHA256 = s.Image.SHA256
				files = append(files, file{filepath.Join(d.dir, r.File), s.Image.Data})
				dirs[filepath.Join(d.dir, s.Class)] = true
				if had && cur.File != "" && cur.File != r.File {
					remove = append(remove, cur.File)
				}
			}
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("manifest line: %w", err)
			}
			lines.Write(b)
			lines.WriteByte('\n')
			d.seen[r.ID] = true // within the batch too (a duplicate in one batch)
			if !r.Stale {
				d.items[r.ItemID] = r
			}
			recs = append(recs, r)
		}
		if len(recs) == 0 {
			return nil
		}
		// The index above already counts these samples: on any error it is
		// dropped and read again from the manifest, so that redelivery
		// writes them.
		for dir := range dirs {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				d.forget()
				return fmt.Errorf("dataset: %w", err)
			}
		}
		if err := writeFiles(files); err != nil {
			d.forget()
			return err
		}
		if len(dirs) > 0 {
			if err := syncFS(d.f); err != nil {
				d.forget()
				return err
			}
		}
		if _, err := d.f.Write(lines.Bytes()); err != nil {
			d.forget()
			return fmt.Errorf("append manifest: %w", err)
		}
		if err := d.f.Sync(); err != nil {
			d.forget()
			return fmt.Errorf("sync manifest: %w", err)
		}
		d.off += int64(lines.Len())
		// A correction moved the item to another class: drop the old file.
		for _, f := range remove {
			if err := os.Remove(filepath.Join(d.dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove superseded %s: %w", f, err)
			}
		}
		added = len(recs)
		return nil
	})
	return added, err
}

// forget drops the in-memory index after a failed append; the next lock
// re-reads the manifest from the start, so redelivery writes them again.
func (d *Dataset) forget() {
	d.seen, d.items, d.off = map[string]bool{}, map[string]Record{}, 0
}

// file is an image to write.
type file struct {
	path string
	data []byte
}

// writeFiles writes a batch's images, a few at a time: creating files
// costs the kernel more than writing 50 KB, and it overlaps across CPUs.
func writeFiles(files []file) error {
	workers := min(len(files), 4)
	if workers <= 1 {
		for _, f := range files {
			if err := writeFile(f.path, f.data); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		errMu sync.Mutex
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(files); i = int(next.Add(1) - 1) {
				if err := writeFile(files[i].path, files[i].data); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// writeFile writes data to path atomically (temp file, rename); the
// directory exists. It does not
// fsync: Write makes the whole batch durable with one syncfs before the
// manifest names it, so a crash before that leaves at most files without a
// manifest line, which redelivery rewrites with the same bytes.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fsTopDir is ext4's "top of directory hierarchy" inode flag (chattr +T,
// FS_TOPDIR_FL in linux/fs.h).
const fsTopDir = 0x00020000

// spreadClasses marks the dataset directory as a top of directory
// hierarchy (chattr +T), so that ext4 places each class folder created in
// it in a block group of its own choosing (as for folders at the root of
// the file system) instead of in the dataset directory's group, and with
// it the inodes of the samples written there. Best effort: other file
// systems refuse or ignore the flag, and nothing depends on it.
//
// Why: on an ext4 without a journal (this project's test VM, for one),
// creating a file skips every inode freed in its block group in the last
// one to five minutes, reading each to tell (fs/ext4/ialloc.c,
// recently_deleted). In a group where other programs create and delete
// many files (a temporary directory: go build and go test clean up
// thousands) one create then costs 0.7-0.9 ms of kernel CPU instead of
// ~25 µs, which alone held the collector near 1,000-1,200 samples/s on
// that VM. A class folder in a group of its own does not pay for the
// others' deletions. With a journal ext4 does not do this, and the flag
// only spreads folders.
func spreadClasses(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopDir != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsTopDir))
}

// syncFS flushes the file system holding the dataset (file data, inodes and
// directories of the whole batch) in one call instead of an fsync per file.
func syncFS(f *os.File) error {
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs dataset: %w", err)
	}
	return nil
}
