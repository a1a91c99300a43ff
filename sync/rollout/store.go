package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/linesight/linesight/sync/wire"
)

// Releases is the fleet's directory of pushed releases, so that a
// long-running publisher (linesight-fleet serve) answers chunk requests
// for offers pushed by a short-lived command (linesight-fleet push):
//
//	<dir>/<offer>/offer.json   the signed wire.ModelOffer (JSON)
//	<dir>/<offer>/files/...    a copy of the package's files
//
// A release is written in a temporary directory and renamed into place, so
// a reader sees all of it or nothing.
type Releases struct{ dir string }

// OpenReleases opens (creating) a releases directory.
func OpenReleases(dir string) (*Releases, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("releases: %w", err)
	}
	return &Releases{dir: dir}, nil
}

// Dir is the releases directory.
func (s *Releases) Dir() string { return s.dir }

// Put stores a signed offer and a copy of its package's files from pkg.
// Storing an offer again is a no-op.
func (s *Releases) Put(off *wire.ModelOffer, r *Release, pkg string) error {
	final := filepath.Join(s.dir, r.Offer)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(s.dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("store release: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range r.Files {
		if err := copyFile(filepath.Join(pkg, filepath.FromSlash(f.Path)), filepath.Join(tmp, "files", filepath.FromSlash(f.Path))); err != nil {
			return fmt.Errorf("store release %s: %w", r.Offer, err)
		}
	}
	b, err := json.Marshal(off)
	if err != nil {
		return fmt.Errorf("store release %s: %w", r.Offer, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "offer.json"), b, 0o644); err != nil {
		return fmt.Errorf("store release %s: %w", r.Offer, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("store release %s: %w", r.Offer, err)
	}
	return nil
}

// Get reads a stored release and a Source for its chunks (each chunk is
// checked against its signed sha256 when read). The offer ID comes from a
// device's request: anything but a plain name is not found.
func (s *Releases) Get(offer string) (*Release, *Source, error) {
	if !wire.ValidRecordID(offer) || filepath.Base(offer) != offer {
		return nil, nil, fmt.Errorf("release %q: %w", offer, os.ErrNotExist)
	}
	dir := filepath.Join(s.dir, offer)
	b, err := os.ReadFile(filepath.Join(dir, "offer.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("release %s: %w", offer, err)
	}
	var off wire.ModelOffer
	if err := json.Unmarshal(b, &off); err != nil {
		return nil, nil, fmt.Errorf("release %s: %v: %w", offer, err, ErrBadRelease)
	}
	var r Release
	if err := json.Unmarshal(off.Release, &r); err != nil {
		return nil, nil, fmt.Errorf("release %s: %v: %w", offer, err, ErrBadRelease)
	}
	if err := r.Validate(); err != nil {
		return nil, nil, fmt.Errorf("release %s: %w", offer, err)
	}
	if r.Offer != offer {
		return nil, nil, fmt.Errorf("release %s holds offer %s: %w", offer, r.Offer, ErrBadRelease)
	}
	return &r, NewSource(filepath.Join(dir, "files"), &r), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	return errors.Join(err, out.Close())
}
