package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Counter names in the meta bucket (8-byte big-endian values), kept exact
// by the transactions that change what they count.
const (
	cInspections = "n/inspections"
	cQueue       = "n/queue"
	cLabels      = "n/labels"
	cImages      = "n/images"
)

// Usage is the disk the store occupies, as the budget counts it.
type Usage struct {
	// FileBytes is the bbolt file's size. bbolt files never shrink: pages
	// freed by deletes are reused, not returned to the file system.
	FileBytes int64 `json:"file_bytes"`
	// DBInUse is FileBytes less bbolt's free and pending pages (from the
	// freelist after the last write transaction): the pages holding data.
	DBInUse int64 `json:"db_in_use"`
	// ImageBytes is the sum of the image files' sizes.
	ImageBytes int64 `json:"image_bytes"`
}

// Total is what the budget is compared with: DBInUse + ImageBytes.
func (u Usage) Total() int64 { return u.DBInUse + u.ImageBytes }

// Usage measures the store's disk use (see Usage's fields).
func (s *Store) Usage() (Usage, error) {
	var u Usage
	err := s.view(func(tx *bolt.Tx) error {
		u.FileBytes = tx.Size()
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("usage: %w", err)
	}
	st := s.db.Stats()
	u.DBInUse = u.FileBytes - int64(st.FreeAlloc)
	u.ImageBytes = s.imgBytes.Load()
	return u, nil
}

// Stats is a snapshot for monitoring (the Prometheus exporter reads it).
type Stats struct {
	Inspections uint64          `json:"inspections"`
	Queue       uint64          `json:"queue"`
	Labels      uint64          `json:"labels"`
	Images      uint64          `json:"images"`
	Outbox      map[Kind]uint64 `json:"outbox"` // pending entries by kind
	Usage       Usage           `json:"usage"`
	// Deleted by retention since the file was created, by cause.
	DeletedByAge    Deleted `json:"deleted_by_age"`
	DeletedByBudget Deleted `json:"deleted_by_budget"`
	// OrphansSwept: image files without a record removed at the last Open.
	OrphansSwept uint64 `json:"orphans_swept"`
	// Commits and Requests since Open: Requests/Commits is the mean group size.
	Commits  uint64 `json:"commits"`
	Requests uint64 `json:"requests"`
	Schema   uint64 `json:"schema"`
}

// Stats reads the counters; it is cheap (one read transaction, no scans).
func (s *Store) Stats() (Stats, error) {
	st := Stats{Outbox: map[Kind]uint64{}}
	err := s.view(func(tx *bolt.Tx) error {
		m := tx.Bucket(bMeta)
		g := func(k string) uint64 { return getU64(m.Get([]byte(k))) }
		st.Inspections, st.Queue, st.Labels, st.Images = g(cInspections), g(cQueue), g(cLabels), g(cImages)
		for _, k := range kinds {
			st.Outbox[k] = g(outboxCounter(k))
		}
		del := func(cause string) Deleted {
			d := func(what string) uint64 { return g(delKey(cause, what)) }
			return Deleted{Images: d("images"), Inspections: d("inspections"), Unreviewed: d("unreviewed"), Labels: d("labels"), Outbox: d("outbox")}
		}
		st.DeletedByAge, st.DeletedByBudget = del(causeAge), del(causeBudget)
		st.Schema = g(string(keySchema))
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	st.Usage, err = s.Usage()
	st.OrphansSwept = s.orphansSwept.Load()
	st.Commits, st.Requests = s.commits.Load(), s.joined.Load()
	return st, err
}

// OutboxLen is the number of pending outbox entries.
func (st Stats) OutboxLen() uint64 {
	var n uint64
	for _, v := range st.Outbox {
		n += v
	}
	return n
}
