package camera

import (
	"time"

	"gocv.io/x/gocv"
)

// Frame is one captured image and what is known about it. The holder of a
// *Frame owns its Mats and must call Close exactly once when done (Close is
// idempotent, so a deferred Close after a hand-off is harmless if the
// receiver takes ownership by setting the pointer to nil).
type Frame struct {
	// Mat is the image: 8-bit, 1 channel (gray) or 3 channels (BGR) as the
	// source delivers it, after the camera's ROI crop and rotation. It is
	// empty for a late part that could not be captured at all (Late true).
	Mat gocv.Mat
	// Mask is the ground-truth defect mask (8-bit, 255 on the defect, same
	// size as Mat) when the source knows it (synthetic); empty otherwise.
	Mask gocv.Mat

	CameraID string
	// Seq numbers the frames a Camera passes on, from 1, without gaps
	// (late parts included); a bare Source numbers its own reads.
	Seq uint64
	// Time is the capture time: wall clock with Go's monotonic reading, so
	// Time.Sub and time.Since are immune to clock steps.
	Time time.Time

	// PartID is the part this frame shows, from the trigger; empty when
	// the camera runs free.
	PartID string
	// Triggered is when the trigger for PartID arrived.
	Triggered time.Time
	// Deadline is when a verdict for the part is due; zero when free-run.
	Deadline time.Time
	// Late marks a part that cannot be inspected in time (deadline passed,
	// queue full, camera down). It is still passed on, never dropped, so
	// the policy gives it the fail-safe verdict and the store records it.
	Late bool
	// LateReason says why, for the record: "deadline", "queue full",
	// "camera unavailable: ...".
	LateReason string

	// Truth is the ground-truth class when known: the class-named
	// subfolder of a folder source, the class of a synthetic part.
	Truth string
	// Source metadata: kind, path or URL, file name, frame index in the
	// file, exposure of a synthetic part. Keys are stable lower-case words.
	Meta map[string]string
}

// HasImage reports whether the frame carries an image.
func (f *Frame) HasImage() bool { return f != nil && f.Mat.Ptr() != nil && !f.Mat.Empty() }

// Close releases the frame's Mats. It is safe to call more than once and
// on a nil *Frame.
func (f *Frame) Close() error {
	if f == nil {
		return nil
	}
	closeMat(&f.Mat)
	closeMat(&f.Mask)
	return nil
}

// closeMat closes m if it holds a Mat and leaves it zero, so a second call
// does nothing.
func closeMat(m *gocv.Mat) {
	if m.Ptr() != nil {
		m.Close()
	}
	*m = gocv.Mat{}
}

// Overdue reports whether the frame has a deadline that has passed at now.
func (f *Frame) Overdue(now time.Time) bool {
	return !f.Deadline.IsZero() && now.After(f.Deadline)
}
