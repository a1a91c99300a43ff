package store

import "errors"

// Sentinel errors. Callers test them with errors.Is; the review UI maps
// them to messages a person understands. Every error the store returns is
// wrapped with short lower-case context around one of these or an I/O error.
var (
	// ErrClosed: the store is closed (or closing); nothing was written.
	ErrClosed = errors.New("store closed")
	// ErrNotFound: no inspection, label or queue item has that ID.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a record or argument is malformed (bad ID, empty camera,
	// unknown outbox kind, ...); nothing was written.
	ErrInvalid = errors.New("invalid")
	// ErrLeaseHeld: another inspector holds an unexpired lease on the item.
	ErrLeaseHeld = errors.New("item is being reviewed by another inspector")
	// ErrQueueEmpty: no queue item matches the filter and is free to claim.
	ErrQueueEmpty = errors.New("review queue empty")
	// ErrAlreadyLabelled: the item has a label; use Correct to change it.
	ErrAlreadyLabelled = errors.New("item already labelled")
	// ErrNotYourLabel: only the inspector who wrote a label may undo it.
	ErrNotYourLabel = errors.New("label was written by another inspector")
	// ErrUndoExpired: the undo window has passed; use Correct instead.
	ErrUndoExpired = errors.New("undo window has passed")
	// ErrAlreadySynced: the label has reached the collector and can no
	// longer be undone; use Correct to send a correcting label.
	ErrAlreadySynced = errors.New("label already synced")
	// ErrSchemaTooNew: the file was written by a newer LineSight.
	ErrSchemaTooNew = errors.New("database schema is newer than this program")
)
