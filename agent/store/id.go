package store

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// idGen makes inspection IDs: "<16 hex unix nanos>-<4 hex process tag>-<8 hex counter>",
// e.g. "1842f0c5a1b2c3d4-9f1e-0000002a". Lexical order is time order (the
// nanos are fixed-width); the random process tag and the counter keep IDs
// unique across goroutines and restarts within the same nanosecond.
type idGen struct {
	tag uint16
	n   atomic.Uint32
}

// NewID returns a fresh inspection ID for a part captured at t.
// The pipeline assigns it once, when the part arrives, and reuses it on
// every retry, so a redelivered Put is harmless.
func (s *Store) NewID(t time.Time) string {
	return fmt.Sprintf("%016x-%04x-%08x", uint64(t.UnixNano()), s.ids.tag, s.ids.n.Add(1))
}

// IDTime returns the time encoded in an inspection ID.
func IDTime(id string) (time.Time, error) {
	if err := validID(id); err != nil {
		return time.Time{}, err
	}
	n, _ := strconv.ParseUint(id[:16], 16, 64)
	return time.Unix(0, int64(n)), nil
}

// timeKey is the 16 hex digit prefix of IDs made at t; IDs made before t
// sort before it.
func timeKey(t time.Time) []byte {
	return fmt.Appendf(nil, "%016x", uint64(t.UnixNano()))
}

// validID accepts "<16 lower-case hex>-<1..100 of [A-Za-z0-9._-]>": sortable
// by time and safe as a file name.
func validID(id string) error {
	if len(id) < 18 || len(id) > 117 || id[16] != '-' {
		return fmt.Errorf("%w: id %q: want <16 hex nanos>-<suffix>", ErrInvalid, id)
	}
	for i := 0; i < 16; i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w: id %q: want <16 hex nanos>-<suffix>", ErrInvalid, id)
		}
	}
	for i := 17; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: id %q: character %q", ErrInvalid, id, c)
		}
	}
	return nil
}
