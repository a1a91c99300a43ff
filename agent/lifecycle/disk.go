package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/internal/atomicfile"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

// On-disk layout under Options.Dir.
const (
	pointerFile  = "active"       // {"active":ID,"previous":ID}
	versionsDir  = "versions"     // versions/<name@version>/ manifest.json model.onnx ... release.json
	incomingDir  = "incoming"     // incoming/<offer>/NNNNNN: verified chunks of a transfer
	rejectedDir  = "rejected"     // rejected/<name@version>: the reason, one line
	releaseFile  = "release.json" // the signed offer that installed the version
	tmpPrefix    = ".tmp-"
	builtinID    = "builtin"
	pointerTemp  = pointerFile + ".tmp" // atomicfile.TempName(pointerFile)
	maxReleaseKB = 512
)

type pointer struct {
	Active   string `json:"active"`
	Previous string `json:"previous,omitempty"`
}

// writeFileAtomic writes b to path durably and atomically (see
// internal/atomicfile).
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteFile(path, b, 0o644) }

func (l *Lifecycle) readPointer() (pointer, error) {
	var p pointer
	b, err := os.ReadFile(filepath.Join(l.o.Dir, pointerFile))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Active == "" {
		return pointer{}, fmt.Errorf("read %s: not a pointer file", pointerFile)
	}
	return p, nil
}

func (l *Lifecycle) writePointer(p pointer) error {
	b, _ := json.Marshal(p)
	if err := writeFileAtomic(filepath.Join(l.o.Dir, pointerFile), b); err != nil {
		return fmt.Errorf("write active pointer: %w", err)
	}
	return nil
}

func (l *Lifecycle) versionDir(id string) string { return filepath.Join(l.o.Dir, versionsDir, id) }

// version is a model version that passed verification.
type version struct {
	id  string
	pkg *inference.Package
	rel *rollout.Release // nil for the built-in model
}

func (v *version) ref() wire.ModelRef {
	if v == nil || v.pkg == nil {
		return wire.ModelRef{}
	}
	return wire.ModelRef{Name: v.pkg.Manifest.Name, Version: v.pkg.Manifest.Version}
}

// loadVersion verifies a stored version: its signed release against the
// trusted keys, every file against the release, and the package as
// inference loads it (manifest rules, model sha256).
func (l *Lifecycle) loadVersion(id string) (*version, error) {
	if id == builtinID {
		if l.o.Builtin == nil {
			return nil, ErrNoModel
		}
		return &version{id: builtinID, pkg: l.o.Builtin}, nil
	}
	dir := l.versionDir(id)
	b, err := os.ReadFile(filepath.Join(dir, releaseFile))
	if err != nil {
		return nil, fmt.Errorf("version %s: %w", id, err)
	}
	var off wire.ModelOffer
	if err := json.Unmarshal(b, &off); err != nil {
		return nil, fmt.Errorf("version %s: %s: %v: %w", id, releaseFile, err, ErrBadRelease)
	}
	rel, err := rollout.Verify(&off, l.o.TrustedKeys)
	if err != nil {
		return nil, fmt.Errorf("version %s: %w", id, err)
	}
	if rel.ID() != id {
		return nil, fmt.Errorf("version %s holds release %s: %w", id, rel.ID(), ErrBadRelease)
	}
	if err := rollout.CheckFiles(dir, rel, releaseFile); err != nil {
		return nil, fmt.Errorf("version %s: %w", id, err)
	}
	pkg, err := inference.LoadPackage(dir)
	if err != nil {
		return nil, fmt.Errorf("version %s: %w", id, err)
	}
	return &version{id: id, pkg: pkg, rel: rel}, nil
}

// recover runs at Open: it removes what an interrupted write left and
// picks the version to serve: the pointer's active one if it verifies,
// else its previous one, else the built-in model. A fallback is written
// back to the pointer so that the disk says what serves.
func (l *Lifecycle) recover() error {
	for _, d := range []string{versionsDir, incomingDir, rejectedDir} {
		if err := os.MkdirAll(filepath.Join(l.o.Dir, d), 0o755); err != nil {
			return fmt.Errorf("open model dir: %w", err)
		}
	}
	os.Remove(filepath.Join(l.o.Dir, pointerTemp))
	if ents, err := os.ReadDir(filepath.Join(l.o.Dir, versionsDir)); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				l.log.Info("removing a half-written model version", "dir", e.Name())
				os.RemoveAll(filepath.Join(l.o.Dir, versionsDir, e.Name()))
			}
		}
	}
	p, err := l.readPointer()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.log.Error("model pointer unreadable; serving the built-in model", "err", err)
	}
	if err != nil {
		p = pointer{Active: builtinID}
	}
	want := p
	for _, id := range []string{p.Active, p.Previous, builtinID} {
		if id == "" {
			continue
		}
		v, err := l.loadVersion(id)
		if err != nil {
			l.log.Error("model version fails verification", "version", id, "err", err)
			continue
		}
		l.active = v
		if id == p.Active {
			if p.Previous != "" && p.Previous != builtinID {
				if pv, err := l.loadVersion(p.Previous); err == nil {
					l.previous = pv
				}
			} else if p.Previous == builtinID && l.o.Builtin != nil {
				l.previous = &version{id: builtinID, pkg: l.o.Builtin}
			}
		}
		break
	}
	if l.active == nil {
		return fmt.Errorf("open model lifecycle: %w", ErrNoModel)
	}
	if l.active.id != want.Active {
		prev := ""
		if l.previous != nil {
			prev = l.previous.id
		}
		if err := l.writePointer(pointer{Active: l.active.id, Previous: prev}); err != nil {
			return err
		}
	}
	return nil
}

// install moves an assembled transfer into versions/<id>: the files are
// assembled into a temp directory with the signed release beside them,
// each fsynced, then the directory is renamed into place and the parent
// fsynced. A crash before the rename leaves a temp directory that Open
// removes; after it, a complete verified version.
func (l *Lifecycle) install(rel *rollout.Release, off wire.ModelOffer, asm *rollout.Assembler) error {
	vdir := filepath.Join(l.o.Dir, versionsDir)
	tmp := filepath.Join(vdir, tmpPrefix+rel.ID()+"-"+rel.Offer)
	os.RemoveAll(tmp)
	if err := asm.Assemble(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("install %s: %w", rel.ID(), err)
	}
	b, _ := json.Marshal(wire.ModelOffer{Release: off.Release, KeyID: off.KeyID, Signature: off.Signature})
	if err := writeFileAtomic(filepath.Join(tmp, releaseFile), b); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("install %s: %w", rel.ID(), err)
	}
	dst := l.versionDir(rel.ID())
	if err := os.RemoveAll(dst); err != nil { // a stale copy that failed verification
		return fmt.Errorf("install %s: %w", rel.ID(), err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("install %s: %w", rel.ID(), err)
	}
	if err := atomicfile.SyncDir(vdir); err != nil {
		return fmt.Errorf("install %s: %w", rel.ID(), err)
	}
	return nil
}

func (l *Lifecycle) markRejected(id string, reason error) {
	if id == builtinID {
		return
	}
	if err := writeFileAtomic(filepath.Join(l.o.Dir, rejectedDir, id), []byte(reason.Error()+"\n")); err != nil {
		l.log.Error("record rejected version", "version", id, "err", err)
	}
}

func (l *Lifecycle) wasRejected(id string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(l.o.Dir, rejectedDir, id))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}
