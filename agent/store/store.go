package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Options tune a Store. The zero value is usable: no retention, defaults below.
type Options struct {
	// MaxAge deletes records older than it (0: no age limit). An unsynced
	// human label, its inspection and its image are never deleted.
	MaxAge time.Duration
	// MaxBytes is the disk budget: bbolt data in use plus image files
	// (0: no budget). See Usage for how it is measured.
	MaxBytes int64
	// Headroom is the share of MaxBytes freed below the budget when it is
	// exceeded, so retention does not run on every record (default 0.05).
	Headroom float64
	// RetentionEvery is how often the background retention runs
	// (default 1m; negative: never in the background, call Retain).
	RetentionEvery time.Duration
	// MaxBatch caps the requests joined into one transaction (default 2000;
	// 1 disables group commit: one transaction and fsync per request).
	MaxBatch int
	// LeaseFor is the default lease of a review item (default 2m).
	LeaseFor time.Duration
	// UndoWindow is how long after labelling an inspector may undo (default 2m).
	UndoWindow time.Duration
	// DecisionsToOutbox appends a "decision" outbox entry for every Put,
	// in the same transaction, for the uplink's decisions topic.
	DecisionsToOutbox bool
	// NoSync skips fsync (tests and benchmarks only: breaks durability).
	NoSync bool
	// Logger is tagged with component=store (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Headroom <= 0 || o.Headroom >= 1 {
		o.Headroom = 0.05
	}
	if o.RetentionEvery == 0 {
		o.RetentionEvery = time.Minute
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 2000
	}
	if o.LeaseFor <= 0 {
		o.LeaseFor = 2 * time.Minute
	}
	if o.UndoWindow <= 0 {
		o.UndoWindow = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("component", "store")
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Bucket names. Keys are documented in doc.go.
var (
	bMeta        = []byte("meta")
	bInspections = []byte("inspections")
	bQueue       = []byte("queue")
	bLabels      = []byte("labels")
	bOutbox      = []byte("outbox")
	bOutboxID    = []byte("outbox_id")
	bPendingRef  = []byte("pending_ref")
	bImages      = []byte("images")
)

var keySchema = []byte("schema_version")

// Store is the agent's durable store. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	path   string
	imgDir string
	opts   Options
	log    *slog.Logger

	reqs   chan *request
	mu     sync.RWMutex // guards closed against senders on reqs
	closed bool
	stop   chan struct{} // closed by Close: writer drains and exits
	cancel context.CancelFunc
	wg     sync.WaitGroup

	imgBytes     atomic.Int64 // bytes of image files referenced or pending
	ids          idGen
	commits      atomic.Uint64
	joined       atomic.Uint64 // requests committed
	orphansSwept atomic.Uint64
	retainMu     sync.Mutex

	// Leases on review items live in memory, not in the file: they are
	// advisory and short (minutes), so claiming and releasing an item costs
	// no fsync, and a restart simply frees them all.
	leaseMu sync.Mutex
	leases  map[string]lease
}

// Open opens (creating if needed) the store at path, with images in the
// directory path+".images". It migrates an older schema, sweeps orphan image
// files and starts the group-commit writer and the background retention.
func Open(path string, opts Options) (*Store, error) {
	opts.defaults()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: opts.NoSync, FreelistType: bolt.FreelistMapType})

	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{
		db: db, path: path, imgDir: path + ".images", opts: opts, log: opts.Logger,
		reqs: make(chan *request, 4*opts.MaxBatch), stop: make(chan struct{}), leases: map[string]lease{},
	}
	var tag [2]byte
	_, _ = rand.Read(tag[:])
	s.ids.tag = binary.BigEndian.Uint16(tag[:])
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := os.MkdirAll(s.imgDir, 0o755); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: images dir: %w", err)
	}
	if err := s.sweepImages(); err != nil {
		db.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go s.writeLoop()
	if opts.RetentionEvery > 0 && (opts.MaxAge > 0 || opts.MaxBytes > 0) {
		s.wg.Add(1)
		go s.retentionLoop(ctx)
	}
	return s, nil
}

// Close stops accepting writes, commits every request already submitted,
// waits for the writer and the retention loop, then closes the file.
// It is safe to call twice.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	close(s.stop)
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path is the bbolt file; ImageDir is where the JPEG files live.
func (s *Store) Path() string     { return s.path }
func (s *Store) ImageDir() string { return s.imgDir }

// DB exposes the bbolt handle for read-only inspection (tests, `bbolt
// check`-style tooling). Never write through it.
func (s *Store) DB() *bolt.DB { return s.db }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// open reports ErrClosed after Close, or ctx's error: for the calls that
// do not go through the writer.
func (s *Store) open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}
