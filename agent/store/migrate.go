package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the layout this code writes. The meta bucket's
// "schema_version" key holds the file's version (8 bytes, big-endian).
const schemaVersion = 2

// migration brings a file from version to-1 to version to, inside the
// single transaction that also records the new version.
type migration struct {
	to   uint64
	what string
	fn   func(tx *bolt.Tx) error
}

// migrations run in order; a new file runs them all. Append, never edit.
var migrations = []migration{
	{1, "buckets: meta, inspections, queue, labels, outbox", migrateV1},
	{2, "indexes outbox_id, pending_ref, images and counters", migrateV2},
}

func (s *Store) migrate() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bMeta)
		if err != nil {
			return err
		}
		v := getU64(meta.Get(keySchema))
		if v > schemaVersion {
			return fmt.Errorf("%w: file has version %d, this program knows %d", ErrSchemaTooNew, v, schemaVersion)
		}
		for _, m := range migrations {
			if m.to <= v {
				continue
			}
			if err := m.fn(tx); err != nil {
				return fmt.Errorf("to version %d (%s): %w", m.to, m.what, err)
			}
			if err := tx.Bucket(bMeta).Put(keySchema, u64(m.to)); err != nil {
				return err
			}
			s.log.Info("migrated schema", "to", m.to, "what", m.what)
			v = m.to
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	return nil
}

// SchemaVersion reports the file's schema version.
func (s *Store) SchemaVersion() (uint64, error) {
	var v uint64
	err := s.view(func(tx *bolt.Tx) error {
		v = getU64(tx.Bucket(bMeta).Get(keySchema))
		return nil
	})
	return v, err
}

func migrateV1(tx *bolt.Tx) error {
	for _, b := range [][]byte{bMeta, bInspections, bQueue, bLabels, bOutbox} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// migrateV2 adds the indexes retention and Ack use (outbox_id: entry ID to
// sequence; pending_ref: inspection ID + 0 + sequence to kind; images:
// inspection ID to image size) and the counters in meta, built from the
// v1 data.
func migrateV2(tx *bolt.Tx) error {
	for _, b := range [][]byte{bOutboxID, bPendingRef, bImages} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bMeta)
	counts := map[string]uint64{}
	err := tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
		var e OutboxEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("outbox %x: %w", k, err)
		}
		if err := tx.Bucket(bOutboxID).Put([]byte(e.ID), k); err != nil {
			return err
		}
		if e.Ref != "" {
			if err := tx.Bucket(bPendingRef).Put(refKey(e.Ref, k), []byte(e.Kind)); err != nil {
				return err
			}
		}
		counts[outboxCounter(e.Kind)]++
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bInspections).ForEach(func(k, v []byte) error {
		var in Inspection
		if err := json.Unmarshal(v, &in); err != nil {
			return fmt.Errorf("inspection %s: %w", k, err)
		}
		counts[cInspections]++
		if in.Image != "" {
			counts[cImages]++
			return tx.Bucket(bImages).Put(k, u64(uint64(in.ImageBytes)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	counts[cQueue] = uint64(tx.Bucket(bQueue).Stats().KeyN)
	counts[cLabels] = uint64(tx.Bucket(bLabels).Stats().KeyN)
	for k, n := range counts {
		if err := meta.Put([]byte(k), u64(n)); err != nil {
			return err
		}
	}
	return nil
}
