package camera

import "errors"

// Errors returned by this package. Callers test them with errors.Is; the
// messages wrapped around them say which camera, file or stream failed.
var (
	// ErrClosed: the source, camera or queue was closed.
	ErrClosed = errors.New("camera closed")
	// ErrUnavailable: the device or stream is gone (unplugged, network
	// down, refused). A Camera reopens the source with backoff.
	ErrUnavailable = errors.New("camera unavailable")
	// ErrDecode: one frame or image could not be decoded. The source stays
	// usable; the next Read moves on to the next frame.
	ErrDecode = errors.New("frame could not be decoded")
	// ErrStalled: a live source delivered no frame within the stall timeout.
	ErrStalled = errors.New("camera stalled")
	// ErrNotTriggered: a trigger was sent to a camera that runs free.
	ErrNotTriggered = errors.New("camera is not in external trigger mode")
	// ErrBadTrigger: a trigger message is malformed (no part ID, bad JSON).
	ErrBadTrigger = errors.New("bad trigger")
)
