package review

import (
	"context"
	"time"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
)

// Line is what the UI consumes from the running inspection line (the
// pipeline implements it; agent/cmd passes it in Options.Line). Every method
// is called from HTTP handlers, concurrently, and must not wait on a camera
// or on inference.
type Line interface {
	// Cameras returns a snapshot of every camera, in configuration order.
	// It is called for each live-view request and about once a second per
	// open event stream, so it must be cheap: copy counters kept under a
	// mutex, never scan the store. The caller may keep the result; the
	// implementation must not change the slices it returned.
	Cameras() []CameraStatus

	// SetLevel changes one camera's automation level from its next part on.
	// by is the supervisor who asked (for the audit event the line records
	// and publishes as an Event of kind EventLevel). It returns once the new
	// level is in force; it may block briefly on the line's own lock or on
	// committing that event, bounded by ctx. Errors: one wrapping
	// ErrUnknownCamera for an unknown camera; any other error (a level the
	// camera may not use, a closed line) is shown to the supervisor as it is,
	// so write it for people.
	SetLevel(ctx context.Context, camera string, level policy.Level, by string) error

	// Subscribe returns a channel of events that happen after the call, and a
	// cancel function that ends the subscription and closes the channel (safe
	// to call twice). The line never blocks on a subscriber: when the buffer
	// is full the event is dropped for that subscriber only (the UI catches
	// up from the next Cameras snapshot). The channel is also closed when the
	// line stops.
	Subscribe(buffer int) (events <-chan Event, cancel func())
}

// CameraStatus is one camera's state as the live view shows it. Counts and
// rates are since the line started unless the field says otherwise.
type CameraStatus struct {
	ID     string `json:"id"`
	Source string `json:"source,omitempty"` // source kind: device, url, file, folder, synthetic
	// Automation is the configured level's name; the status page shows it
	// when no Line is running. With a Line, Level is authoritative.
	Automation string `json:"automation,omitempty"`

	// Running is false while the camera is down (State says why).
	Running bool   `json:"running"`
	State   string `json:"state,omitempty"` // e.g. "running", "reconnecting: connection refused"
	// Level is the effective automation level; SetLevel is the level a
	// supervisor chose. They differ while a drift alarm has lowered it.
	Level    policy.Level `json:"level"`
	SetLevel policy.Level `json:"set_level"`

	// Model is the active model; Shadow the model running beside it in
	// shadow mode, if any.
	Model  store.ModelRef  `json:"model"`
	Shadow *store.ModelRef `json:"shadow,omitempty"`

	// Counts of decisions by verdict (pass, reject, defer).
	Counts map[policy.Verdict]uint64 `json:"counts"`
	// DeferRate is the deferred share over the policy's defer window, 0..1;
	// DeferAlarm is true when it is above the configured ceiling.
	DeferRate  float64 `json:"defer_rate"`
	DeferAlarm bool    `json:"defer_alarm"`
	// Throughput is parts per second over the last few seconds.
	Throughput float64 `json:"throughput"`
	// Latency from capture to decision, over recent parts.
	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	// Drift is the input-drift monitor's state.
	Drift Drift `json:"drift"`
	// Last holds the latest decisions, newest first (a handful: the live
	// view shows them as thumbnails).
	Last []Decision `json:"last,omitempty"`
}

// Drift is a camera's drift monitor state.
type Drift struct {
	Alarm  bool    `json:"alarm"`
	Score  float64 `json:"score"`            // the monitor's statistic (larger is further from the reference)
	Detail string  `json:"detail,omitempty"` // which statistic, against which threshold
}

// Decision is one part's outcome as the live view shows it. ID is the
// inspection ID in the store (its image is GET /api/v1/items/{id}/image when
// the store kept one).
type Decision struct {
	ID      string         `json:"id"`
	Camera  string         `json:"camera"`
	Time    time.Time      `json:"time"`
	Verdict policy.Verdict `json:"verdict"`
	Reason  policy.Reason  `json:"reason"`
	Top     string         `json:"top,omitempty"` // the model's top class
	P       float64        `json:"p,omitempty"`   // its probability
	// Latency from capture to decision.
	Latency time.Duration `json:"latency_ns,omitempty"`
	// Review is true when the part went to the review queue.
	Review bool `json:"review,omitempty"`
	// Image is false when the store kept no image of the part.
	Image bool `json:"image"`
}

// EventKind says which field of an Event is set.
type EventKind string

const (
	EventDecision EventKind = "decision" // Decision is set: a part was decided
	EventAlarm    EventKind = "alarm"    // Alarm is set: an alarm was raised or cleared
	EventLevel    EventKind = "level"    // Level is set: a camera's automation level changed
)

// Event is one thing that happened on the line, pushed to the live view.
type Event struct {
	Kind     EventKind   `json:"kind"`
	Time     time.Time   `json:"time"`
	Camera   string      `json:"camera"`
	Decision *Decision   `json:"decision,omitempty"`
	Alarm    *Alarm      `json:"alarm,omitempty"`
	Level    *LevelEvent `json:"level,omitempty"`
}

// Alarm is raised or cleared by the line: "drift", "defer-rate",
// "camera-down", "deadline" and the like.
type Alarm struct {
	Name   string  `json:"name"`
	Active bool    `json:"active"` // false: cleared
	Score  float64 `json:"score,omitempty"`
	Detail string  `json:"detail,omitempty"`
}

// LevelEvent records a change of automation level: by a supervisor (By set)
// or by the line itself (a drift downgrade, By empty).
type LevelEvent struct {
	From policy.Level `json:"from"`
	To   policy.Level `json:"to"`
	By   string       `json:"by,omitempty"`
}

// Models is what the supervisor controls consume from the model lifecycle
// (agent/lifecycle, still to come). Until it lands, Options.Models is nil and
// the UI says "not available yet"; an implementation may also return an
// error wrapping ErrNotAvailable for a camera or action it cannot serve.
type Models interface {
	// Shadow reports how often the shadow model agreed with the active one
	// on a camera. Called per supervisor page load; must be cheap.
	Shadow(camera string) (ShadowStatus, error)
	// Promote makes the camera's shadow model the active one; Rollback
	// returns to the previous active model. Both return once the change is
	// in force (or refused); by is the supervisor, for the audit record.
	Promote(ctx context.Context, camera, by string) error
	Rollback(ctx context.Context, camera, by string) error
}

// ShadowStatus is a shadow model's record against the active model.
type ShadowStatus struct {
	Active    store.ModelRef `json:"active"`
	Shadow    store.ModelRef `json:"shadow"`
	Parts     uint64         `json:"parts"`     // parts both models scored
	Agreement float64        `json:"agreement"` // share with the same verdict, 0..1
	// Previous is the model Rollback would return to, if any.
	Previous *store.ModelRef `json:"previous,omitempty"`
}
