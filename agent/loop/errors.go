package loop

import "errors"

// Sentinel errors.
var (
	// ErrPartID: a part ID is not one Tag gave, or is from another line.
	ErrPartID = errors.New("not a synthetic part")
	// ErrQueueEmpty: the review queue has nothing for the inspector now.
	ErrQueueEmpty = errors.New("review queue empty")
	// ErrReview: the review API refused a request (the error says why).
	ErrReview = errors.New("review api")
)
