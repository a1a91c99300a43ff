package camera

import (
	"sync/atomic"
	"time"
)

// EventKind names what happened to a camera.
type EventKind string

// Event kinds.
const (
	EventDown      EventKind = "down"      // the source failed; reopening with backoff
	EventRetry     EventKind = "retry"     // a reopen attempt failed; Attempt and Backoff say what next
	EventUp        EventKind = "up"        // the source is (re)open and delivering
	EventStalled   EventKind = "stalled"   // a live source sent nothing within stall_timeout
	EventDecode    EventKind = "decode"    // a frame failed to decode (or to crop) and was skipped
	EventDropped   EventKind = "dropped"   // free-run: the oldest queued frame was dropped for a newer one
	EventLate      EventKind = "late"      // a triggered part is passed on flagged late
	EventEnd       EventKind = "end"       // a finite source (file, folder) is finished
	EventTriggered EventKind = "triggered" // a part trigger was accepted
)

// Event is one thing that happened to a camera, for logs, metrics and the
// event outbox.
type Event struct {
	Time     time.Time
	CameraID string
	Kind     EventKind
	Err      error         // down, retry, stalled, decode: the cause
	PartID   string        // late, triggered
	Attempt  int           // retry: attempts failed so far in this outage
	Backoff  time.Duration // retry: wait before the next attempt
}

// Stats are a camera's counters since Open, for metrics. All counts only
// grow; Up and QueueLen are gauges.
type Stats struct {
	Frames       uint64 // frames passed on to the queue (late parts included)
	DecodeErrors uint64 // frames or images skipped because they failed to decode or crop
	Dropped      uint64 // free-run frames dropped from a full queue (oldest first)
	Late         uint64 // triggered parts passed on flagged late
	Triggers     uint64 // part triggers accepted
	Outages      uint64 // times the source went down (errors and stalls)
	Stalls       uint64 // of which: stall watchdog fired
	Retries      uint64 // reopen attempts that failed
	Recoveries   uint64 // times the source came back after an outage
	Up           bool   // the source is open and delivering
	QueueLen     int    // frames waiting for inference now
}

// counters is the live, atomic form of Stats.
type counters struct {
	frames, decode, dropped, late, triggers atomic.Uint64
	outages, stalls, retries, recoveries    atomic.Uint64
	up                                      atomic.Bool
}
