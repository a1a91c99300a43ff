package camera

import (
	"context"
	"fmt"
	"log/slog"
)

// Source delivers frames from one camera, stream, file, folder or the
// synthetic line. Sources are opened with OpenSource (or the New* function
// of each kind) and used by one goroutine at a time, except Close, which
// may be called from any goroutine.
type Source interface {
	// Read returns the next frame, which the caller then owns and must
	// Close. It blocks until a frame is ready: for a live device or stream
	// the next frame captured after the previous Read (older buffered
	// frames are skipped), for a file or folder the next one in order
	// (paced when the spec asks for real time), for the synthetic line at
	// once. It returns promptly when ctx is done, with ctx.Err().
	//
	// On failure it returns a nil frame and an error wrapping:
	//   - io.EOF: a file or folder that does not loop or watch is finished;
	//   - ErrDecode: this one frame or image was unreadable (corrupt, empty
	//     file); the source is still usable and the next Read moves on;
	//   - ErrUnavailable: the device or stream is gone; the source is dead
	//     and must be closed (a Camera reopens it with backoff);
	//   - ErrClosed: Close was called.
	Read(ctx context.Context) (*Frame, error)

	// Info describes the source. It does not block and never fails.
	Info() SourceInfo

	// Close releases the device, stream or file and stops any goroutine
	// the source runs. A Read in progress returns ErrClosed. Close may
	// block until a capture call already inside OpenCV returns (for a
	// network stream at most FFmpeg's own read timeout). It is safe to
	// call more than once; later calls return nil.
	Close() error
}

// SourceInfo describes an open source.
type SourceInfo struct {
	Kind string // one of Kinds
	Name string // device path, URL (without credentials), file or folder path, "synthetic"
	// Live sources (device, url) capture in real time whether or not anyone
	// reads; a Camera watches them for stalls and, between triggers, keeps
	// reading them so that an outage is seen before the next part arrives.
	Live bool
	// Width, Height and FPS as the source reports them; 0 when unknown.
	Width, Height int
	FPS           float64
}

// Options are what a source or camera gets from the agent besides its Spec.
type Options struct {
	// Logger receives the camera's log lines; nil discards them. Lines are
	// tagged with component=camera and the camera ID.
	Logger *slog.Logger
	// OnEvent, when set, is called for every Event (outage, recovery,
	// stall, decode error, drop, late part). It is called from the
	// camera's capture goroutine and must not block.
	OnEvent func(Event)
}

func (o Options) logger(id string) *slog.Logger {
	l := o.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With("component", "camera", "camera", id)
}

// OpenSource opens the source that spec.Source.Kind names. spec should have
// passed Spec.Validate; OpenSource checks again what it needs and reports a
// bad kind or missing path as an error naming the field. Failing to open a
// device or stream returns an error wrapping ErrUnavailable; a Camera
// retries those.
func OpenSource(spec Spec, opts Options) (Source, error) {
	log := opts.logger(spec.ID)
	var src Source
	var err error
	// Each case assigns only on success, so a failed open returns a nil
	// interface, not an interface holding a nil pointer.
	switch spec.Source.Kind {
	case KindSynthetic:
		src, err = asSource(NewSyntheticSource(spec.ID, spec.Source.Synthetic))
	case KindFolder:
		src, err = asSource(NewFolderSource(spec.ID, spec.Source, log))
	case KindFile:
		src, err = asSource(openFile(spec.ID, spec.Source, log))
	case KindDevice:
		src, err = asSource(openDevice(spec.ID, spec.Source, log))
	case KindURL:
		src, err = asSource(openURL(spec.ID, spec.Source, log))
	default:
		err = fmt.Errorf("camera %s: source.kind %q is not allowed; use one of %v", spec.ID, spec.Source.Kind, Kinds)
	}
	return src, err
}

func asSource[S Source](s S, err error) (Source, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
