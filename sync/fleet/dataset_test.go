package fleet

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linesight/linesight/sync/wire"
)

// TestDatasetSpreadsClasses: where the file system has inode flags (ext4),
// the dataset directory is marked as a top of directory hierarchy, so that
// its class folders get block groups of their own; elsewhere nothing fails.
func TestDatasetSpreadsClasses(t *testing.T) {
	dir := t.TempDir()
	ds, err := OpenDataset(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Skipf("no inode flags on this file system: %v", err)
	}
	if flags&fsTopDir == 0 {
		// tmpfs, for one, reads flags but does not keep this one.
		if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsTopDir)); err != nil {
			t.Skipf("this file system does not take the flag: %v", err)
		}
		t.Fatalf("flags %#x: not marked as a top directory", flags)
	}
}

func incoming(i int, class string, rev int) Incoming {
	item := fmt.Sprintf("0000000000000001-test-%08d", i)
	img := []byte(fmt.Sprintf("\xff\xd8\xff jpeg %d rev %d", i, rev))
	id := fmt.Sprintf("label-%s-l%d", item, rev)
	return Incoming{ID: id, Site: "s1", Device: "d1", Sample: wire.Sample{
		LabelID: fmt.Sprintf("%s-l%d", item, rev), ItemID: item, Camera: "cam1", Class: class, By: "ana",
		At: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), Revision: rev, Image: wire.NewImage(img)}}
}

// TestDatasetWrite: each sample is written once, byte-identical, whatever
// the batches and redeliveries; a correction moves the item to its new
// class; a reopened dataset knows what it holds.
func TestDatasetWrite(t *testing.T) {
	dir := t.TempDir()
	ds, err := OpenDataset(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, b, c := incoming(1, "ok", 1), incoming(2, "crack", 1), incoming(3, "ok", 1)
	fix := incoming(1, "scratch", 2)
	for _, tc := range []struct {
		name  string
		batch []Incoming
		added int
	}{
		{"new", []Incoming{a, b}, 2},
		{"duplicate in one batch", []Incoming{c, c}, 1},
		{"redelivered", []Incoming{a, b, c}, 0},
		{"correction", []Incoming{fix}, 1},
		{"older revision after the correction", []Incoming{incoming(1, "crack", 1)}, 0},
	} {
		n, err := ds.Write(tc.batch, now)
		if err != nil || n != tc.added {
			t.Fatalf("%s: added %d, %v; want %d", tc.name, n, err, tc.added)
		}
	}
	for _, in := range []Incoming{fix, b, c} {
		got, err := os.ReadFile(filepath.Join(dir, in.Sample.Class, in.Sample.ItemID+".jpg"))
		if err != nil || !bytes.Equal(got, in.Sample.Image.Data) {
			t.Fatalf("%s: %q %v", in.ID, got, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ok", a.Sample.ItemID+".jpg")); !os.IsNotExist(err) {
		t.Fatalf("corrected item still in its old class: %v", err)
	}
	if ds.Len() != 4 {
		t.Fatalf("len %d, want 4 (three samples and a correction)", ds.Len())
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
	ds, err = OpenDataset(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if n, err := ds.Write([]Incoming{a, b, c, fix}, now); err != nil || n != 0 || ds.Len() != 4 {
		t.Fatalf("reopened: added %d, len %d, %v", n, ds.Len(), err)
	}
}
