package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/linesight/linesight/agent/policy"
	bolt "go.etcd.io/bbolt"
)

// Score is the model's probability for one class.
type Score struct {
	Label string  `json:"label"`
	P     float64 `json:"p"`
}

// ModelRef names the model that scored a part.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Inspection is the record of one part: what the model saw and what the
// policy decided. It is written once by Put and never changed, except that
// retention may drop its image (Image becomes empty, ImagePurged true).
type Inspection struct {
	ID     string    `json:"id"` // from NewID (see IDTime)
	Time   time.Time `json:"time"`
	Camera string    `json:"camera"`
	PartID string    `json:"part_id,omitempty"`
	Model  ModelRef  `json:"model"`
	Scores []Score   `json:"scores,omitempty"`
	Top    string    `json:"top,omitempty"` // top class

	Verdict policy.Verdict `json:"verdict"`
	Reason  policy.Reason  `json:"reason"`
	Detail  string         `json:"detail,omitempty"`
	Level   policy.Level   `json:"level"`
	// ModelVerdict is the model's own would-be verdict (shadow agreement).
	ModelVerdict policy.Verdict `json:"model_verdict,omitempty"`
	// Review puts the part in the review queue (deferred); Audit marks an
	// automatic decision sampled for review (also queued).
	Review bool `json:"review,omitempty"`
	Audit  bool `json:"audit,omitempty"`

	// Timings per pipeline stage ("capture", "preprocess", "inference", ...).
	Timings map[string]time.Duration `json:"timings_ns,omitempty"`

	// Image is the JPEG's path relative to ImageDir, set by Put.
	Image       string `json:"image,omitempty"`
	ImageBytes  int64  `json:"image_bytes,omitempty"`
	ImagePurged bool   `json:"image_purged,omitempty"`

	// Heatmap is where the model looked (its class-activation or anomaly
	// map), resampled by the pipeline to cover the stored image exactly.
	Heatmap *Heatmap `json:"heatmap,omitempty"`
	// Width and Height of the stored image in pixels.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// Heatmap is a coarse W x H grid over the stored image, row-major, each cell
// quantised to 0..255 (0 the map's minimum, 255 its maximum). It is small
// (a 192 px model gives 12 x 12 cells), so it lives in the record: the review
// UI scales it up and draws it as an overlay.
type Heatmap struct {
	W int    `json:"w"`
	H int    `json:"h"`
	V []byte `json:"v"` // base64 in JSON
}

// FromDecision copies a policy decision's fields into the record.
func (in *Inspection) FromDecision(d policy.Decision) {
	in.Verdict, in.Reason, in.Detail, in.Level = d.Verdict, d.Reason, d.Detail, d.Level
	in.ModelVerdict, in.Review, in.Audit = d.Model, d.Review, d.Audit
	if d.Top != "" {
		in.Top = d.Top
	}
}

func (in *Inspection) queued() bool { return in.Review || in.Audit }

func (in *Inspection) validate() error {
	if err := validID(in.ID); err != nil {
		return err
	}
	if in.Camera == "" {
		return fmt.Errorf("%w: inspection %s: empty camera", ErrInvalid, in.ID)
	}
	if in.Time.IsZero() {
		return fmt.Errorf("%w: inspection %s: zero time", ErrInvalid, in.ID)
	}
	return nil
}

// Put commits one inspection and, when jpeg is not empty, its image.
// It returns only after the transaction holding the record has committed
// and been fsynced (joined with concurrent Puts into one transaction):
// a nil error means durable. The image file is written, fsynced and renamed
// into place, and its directory fsynced, before that transaction commits,
// so a record never points to a missing image.
//
// Put is idempotent: a record whose ID is already stored is left as it is
// and Put returns nil. It blocks on the writer (one commit, milliseconds);
// a record with a deferred or audited decision also enters the review
// queue, in the same transaction. Put sets in.Image and in.ImageBytes.
func (s *Store) Put(ctx context.Context, in *Inspection, jpeg []byte) error {
	if err := in.validate(); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if len(jpeg) > 0 {
		exists := false
		if err := s.view(func(tx *bolt.Tx) error {
			exists = tx.Bucket(bInspections).Get([]byte(in.ID)) != nil
			return nil
		}); err != nil {
			return fmt.Errorf("put %s: %w", in.ID, err)
		}
		if exists {
			return nil
		}
	}
	var dirs []string
	if len(jpeg) > 0 {
		rel, dir, err := s.writeImage(in.ID, jpeg)
		if err != nil {
			return fmt.Errorf("put %s: %w", in.ID, err)
		}
		in.Image, in.ImageBytes, in.ImagePurged = rel, int64(len(jpeg)), false
		dirs = []string{dir}
	} else {
		in.Image, in.ImageBytes = "", 0
	}
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("put %s: encode: %w", in.ID, err)
	}
	err = s.submit(ctx, func(w *wtx) error {
		// A duplicate racing past the check above keeps the stored record;
		// its image has the same file name.
		_, err := s.putTx(w, in, data)
		return err
	}, dirs...)
	if err != nil {
		if in.Image != "" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			// Definitely not committed: the file would be an orphan.
			_ = os.Remove(filepath.Join(s.imgDir, in.Image))
		}
		return fmt.Errorf("put %s: %w", in.ID, err)
	}
	return nil
}

func (s *Store) putTx(w *wtx, in *Inspection, data []byte) (dup bool, err error) {
	ins := w.tx.Bucket(bInspections)
	key := []byte(in.ID)
	if ins.Get(key) != nil {
		return true, nil
	}
	if err := ins.Put(key, data); err != nil {
		return false, err
	}
	w.add(cInspections, 1)
	if in.queued() {
		q := QueueItem{ID: in.ID, Time: in.Time, Camera: in.Camera, Reason: in.Reason, Audit: in.Audit}
		if err := putJSON(w.tx.Bucket(bQueue), key, q); err != nil {
			return false, err
		}
		w.add(cQueue, 1)
	}
	if in.Image != "" {
		if err := w.tx.Bucket(bImages).Put(key, u64(uint64(in.ImageBytes))); err != nil {
			return false, err
		}
		w.add(cImages, 1)
		n := in.ImageBytes
		w.after = append(w.after, func() { s.imgBytes.Add(n) })
	}
	if s.opts.DecisionsToOutbox {
		if err := s.appendTx(w, OutboxEntry{ID: "decision-" + in.ID, Kind: KindDecision, Ref: in.ID, Time: in.Time, Payload: data}); err != nil {
			return false, err
		}
	}
	return false, nil
}

// Get returns the inspection with that ID, or ErrNotFound.
func (s *Store) Get(id string) (*Inspection, error) {
	var in *Inspection
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		in, err = getInspection(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	return in, nil
}

func getInspection(tx *bolt.Tx, id string) (*Inspection, error) {
	v := tx.Bucket(bInspections).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	var in Inspection
	if err := json.Unmarshal(v, &in); err != nil {
		return nil, fmt.Errorf("decode inspection: %w", err)
	}
	return &in, nil
}

// Image reads the JPEG of an inspection; ErrNotFound when it has none.
func (s *Store) Image(id string) ([]byte, error) {
	in, err := s.Get(id)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if in.Image == "" {
		return nil, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.imgDir, in.Image))
	if err != nil {
		// Retention may have removed it between Get and ReadFile.
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("image %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	return b, nil
}

// Recent returns up to limit inspections, newest first, optionally of one
// camera (the live view).
func (s *Store) Recent(camera string, limit int) ([]*Inspection, error) {
	var out []*Inspection
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bInspections).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var in Inspection
			if err := json.Unmarshal(v, &in); err != nil {
				return fmt.Errorf("decode inspection %s: %w", k, err)
			}
			if camera == "" || in.Camera == camera {
				out = append(out, &in)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recent: %w", err)
	}
	return out, nil
}

// imageRel is the image's path under ImageDir: one folder per UTC day of
// the ID's time, the file named by the ID.
func imageRel(id string) string {
	t, _ := IDTime(id)
	return t.UTC().Format("20060102") + "/" + id + ".jpg"
}

// writeImage writes the JPEG to a temporary file, fsyncs it and renames it
// into place. The caller's transaction fsyncs the directory before commit.
func (s *Store) writeImage(id string, jpeg []byte) (rel, dir string, err error) {
	rel = imageRel(id)
	final := filepath.Join(s.imgDir, rel)
	dir = filepath.Dir(final)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", fmt.Errorf("image dir: %w", err)
		}
		if !s.opts.NoSync {
			if err := syncDir(s.imgDir); err != nil {
				return "", "", err
			}
		}
	}
	f, err := os.CreateTemp(dir, id+".*.tmp")
	if err != nil {
		return "", "", fmt.Errorf("image: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(jpeg)
	if err == nil && !s.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", "", fmt.Errorf("image: %w", err)
	}
	return rel, dir, nil
}

// sweepImages runs at Open: it removes temporary files and image files no
// record references (left by a crash between writing the file and the
// commit, or between a retention commit and the file's removal), and
// counts the bytes of the rest.
func (s *Store) sweepImages() error {
	var total int64
	var orphans []string
	err := s.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bImages)
		return filepath.WalkDir(s.imgDir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			name := d.Name()
			id, ok := strings.CutSuffix(name, ".jpg")
			if !ok || idx.Get([]byte(id)) == nil || imageRel(id) != filepath.ToSlash(mustRel(s.imgDir, p)) {
				orphans = append(orphans, p)
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("sweep images: %w", err)
	}
	for _, p := range orphans {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sweep images: %w", err)
		}
	}
	if len(orphans) > 0 {
		s.log.Info("swept orphan image files", "count", len(orphans))
	}
	s.orphansSwept.Store(uint64(len(orphans)))
	s.imgBytes.Store(total)
	return nil
}

func mustRel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}
