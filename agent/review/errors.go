package review

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/linesight/linesight/agent/store"
)

// Sentinel errors of the review package.
var (
	// ErrUnknownCamera: no camera has that ID (Line.SetLevel wraps it).
	ErrUnknownCamera = errors.New("unknown camera")
	// ErrNotAvailable: the feature is not wired on this agent yet (model
	// lifecycle actions before agent/lifecycle lands, the live view without
	// a running line).
	ErrNotAvailable = errors.New("not available yet")
)

// apiError is the JSON body of every error the API returns.
type apiError struct {
	Error string `json:"error"` // a sentence for a person
	Code  string `json:"code"`  // stable, for the UI's logic
	// By names the other inspector on a lease conflict or an existing label.
	By string `json:"by,omitempty"`
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: msg, Code: code})
}

// storeError maps an error from the store or the line to a status and a
// message a person understands.
func storeError(err error) (int, apiError) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, apiError{Code: "not_found", Error: "That item no longer exists (it may have been removed by retention)."}
	case errors.Is(err, store.ErrLeaseHeld):
		return http.StatusConflict, apiError{Code: "lease_held", Error: "Another inspector is reviewing this item."}
	case errors.Is(err, store.ErrAlreadyLabelled):
		return http.StatusConflict, apiError{Code: "already_labelled", Error: "This item has already been labelled."}
	case errors.Is(err, store.ErrQueueEmpty):
		return http.StatusNotFound, apiError{Code: "queue_empty", Error: "Nothing left to review."}
	case errors.Is(err, store.ErrNotYourLabel):
		return http.StatusForbidden, apiError{Code: "not_your_label", Error: "Only the inspector who wrote a label can undo it."}
	case errors.Is(err, store.ErrUndoExpired):
		return http.StatusConflict, apiError{Code: "undo_expired", Error: "Too late to undo; correct the label instead."}
	case errors.Is(err, store.ErrAlreadySynced):
		return http.StatusConflict, apiError{Code: "already_synced", Error: "The label has already been sent; correct it instead."}
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, apiError{Code: "invalid", Error: "The request was not valid: " + err.Error()}
	case errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable, apiError{Code: "closed", Error: "The agent is shutting down; try again in a moment."}
	case errors.Is(err, ErrUnknownCamera):
		return http.StatusNotFound, apiError{Code: "unknown_camera", Error: "No camera has that name."}
	case errors.Is(err, ErrNotAvailable):
		return http.StatusNotImplemented, apiError{Code: "not_available", Error: "Not available yet on this agent."}
	}
	return http.StatusInternalServerError, apiError{Code: "internal", Error: "Something went wrong: " + err.Error()}
}
