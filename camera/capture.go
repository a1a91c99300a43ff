package camera

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// CaptureSource reads a V4L2 device, a network stream (RTSP, HTTP MJPEG,
// a GStreamer pipeline) or a video file through OpenCV's VideoCapture.
//
// A live source (device, url) runs one goroutine that owns the
// VideoCapture and captures continuously, keeping only the newest frame,
// so a Read after a trigger gets a fresh image, not a stale buffered one.
// A file is read on demand, paced at its own frame rate when the spec says
// pace: realtime, and reopened at the end when it loops.
type CaptureSource struct {
	id   string
	spec SourceSpec
	log  *slog.Logger
	info SourceInfo
	stop chan struct{}
	once sync.Once

	// file: guarded by mu (Read and Close)
	mu        sync.Mutex
	vc        *gocv.VideoCapture
	open      func() (*gocv.VideoCapture, error)
	index     uint64 // frame index in the file
	pass      int
	passStart time.Time
	passRead  uint64

	// live: the capture goroutine publishes into latest
	lmu      sync.Mutex
	latest   gocv.Mat
	latestAt time.Time
	fresh    bool
	captured uint64
	lerr     error
	notify   chan struct{}
	done     chan struct{}
	seq      uint64
}

var _ Source = (*CaptureSource)(nil)

// openDevice opens a V4L2 device by index or /dev/videoN path and applies
// the FOURCC, size and frame rate asked for.
func openDevice(id string, spec SourceSpec, log *slog.Logger) (*CaptureSource, error) {
	openVC := func() (*gocv.VideoCapture, error) {
		var vc *gocv.VideoCapture
		var err error
		if n, aerr := strconv.Atoi(spec.Device); aerr == nil {
			vc, err = gocv.VideoCaptureDeviceWithAPI(n, gocv.VideoCaptureV4L2)
		} else {
			vc, err = gocv.VideoCaptureFileWithAPI(spec.Device, gocv.VideoCaptureV4L2)
		}
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			return nil, fmt.Errorf("camera %s: open device %s: %w (is it plugged in, and readable by this user?)", id, spec.Device, ErrUnavailable)
		}
		if spec.FourCC != "" {
			vc.Set(gocv.VideoCaptureFOURCC, vc.ToCodec(spec.FourCC))
		}
		if spec.Width > 0 {
			vc.Set(gocv.VideoCaptureFrameWidth, float64(spec.Width))
		}
		if spec.Height > 0 {
			vc.Set(gocv.VideoCaptureFrameHeight, float64(spec.Height))
		}
		if spec.FPS > 0 {
			vc.Set(gocv.VideoCaptureFPS, spec.FPS)
		}
		return vc, nil
	}
	return startLive(id, KindDevice, spec.Device, spec, log, openVC)
}

// openURL opens an RTSP or HTTP stream with FFmpeg, or a GStreamer pipeline
// (a string containing "!", ending in appsink) with GStreamer.
func openURL(id string, spec SourceSpec, log *slog.Logger) (*CaptureSource, error) {
	api, name := gocv.VideoCaptureFFmpeg, redactURL(spec.URL)
	if strings.Contains(spec.URL, "!") {
		api, name = gocv.VideoCaptureGstreamer, "gstreamer: "+spec.URL
	}
	openVC := func() (*gocv.VideoCapture, error) {
		vc, err := gocv.VideoCaptureFileWithAPI(spec.URL, api)
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			return nil, fmt.Errorf("camera %s: open stream %s: %w", id, name, ErrUnavailable)
		}
		return vc, nil
	}
	return startLive(id, KindURL, name, spec, log, openVC)
}

// redactURL hides a password in a stream URL for logs and Info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func startLive(id, kind, name string, spec SourceSpec, log *slog.Logger, openVC func() (*gocv.VideoCapture, error)) (*CaptureSource, error) {
	vc, err := openVC()
	if err != nil {
		return nil, err
	}
	s := &CaptureSource{id: id, spec: spec, log: log, stop: make(chan struct{}),
		notify: make(chan struct{}, 1), done: make(chan struct{})}
	s.info = SourceInfo{Kind: kind, Name: name, Live: true,
		Width: int(vc.Get(gocv.VideoCaptureFrameWidth)), Height: int(vc.Get(gocv.VideoCaptureFrameHeight)),
		FPS: finite(vc.Get(gocv.VideoCaptureFPS))}
	go s.capture(vc)
	return s, nil
}

// capture owns vc: it reads frames until a read fails or Close, keeping
// only the newest one, and closes vc when it stops.
func (s *CaptureSource) capture(vc *gocv.VideoCapture) {
	defer close(s.done)
	defer vc.Close()
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			s.lmu.Lock()
			s.lerr = fmt.Errorf("camera %s: %s: %w: no frame from the capture (unplugged, stream ended or network down)", s.id, s.info.Name, ErrUnavailable)
			s.lmu.Unlock()
			s.signal()
			return
		}
		s.lmu.Lock()
		closeMat(&s.latest)
		s.latest, s.latestAt, s.fresh = m, time.Now(), true
		s.captured++
		s.lmu.Unlock()
		s.signal()
	}
}

func (s *CaptureSource) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// openFile opens a video file; with loop it reopens it at the end.
func openFile(id string, spec SourceSpec, log *slog.Logger) (*CaptureSource, error) {
	openVC := func() (*gocv.VideoCapture, error) {
		vc, err := gocv.VideoCaptureFile(spec.Path)
		if err != nil || !vc.IsOpened() {
			if vc != nil {
				vc.Close()
			}
			return nil, fmt.Errorf("camera %s: open video file %s: not found or not a video OpenCV can read", id, spec.Path)
		}
		return vc, nil
	}
	vc, err := openVC()
	if err != nil {
		return nil, err
	}
	s := &CaptureSource{id: id, spec: spec, log: log, stop: make(chan struct{}), vc: vc, open: openVC}
	fps := finite(vc.Get(gocv.VideoCaptureFPS))
	s.info = SourceInfo{Kind: KindFile, Name: spec.Path,
		Width: int(vc.Get(gocv.VideoCaptureFrameWidth)), Height: int(vc.Get(gocv.VideoCaptureFrameHeight)), FPS: fps}
	return s, nil
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

// Read returns the next frame. See Source.Read.
func (s *CaptureSource) Read(ctx context.Context) (*Frame, error) {
	if s.info.Live {
		return s.readLive(ctx)
	}
	return s.readFile(ctx)
}

func (s *CaptureSource) readLive(ctx context.Context) (*Frame, error) {
	for {
		s.lmu.Lock()
		if s.fresh {
			m, at := s.latest, s.latestAt
			s.latest, s.fresh = gocv.Mat{}, false
			s.seq++
			seq, captured := s.seq, s.captured
			s.lmu.Unlock()
			return &Frame{Mat: m, CameraID: s.id, Seq: seq, Time: at,
				Meta: map[string]string{"kind": s.info.Kind, "source": s.info.Name, "captured": strconv.FormatUint(captured, 10)}}, nil
		}
		err := s.lerr
		s.lmu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.notify:
		case <-s.stop:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *CaptureSource) readFile(ctx context.Context) (*Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vc == nil {
		return nil, ErrClosed
	}
	if s.passStart.IsZero() {
		s.passStart = time.Now()
	}
	if s.spec.Pace != "fast" && s.info.FPS > 0 {
		due := s.passStart.Add(time.Duration(float64(s.passRead) / s.info.FPS * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-s.stop:
				return nil, ErrClosed
			}
		}
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := gocv.NewMat()
		if s.vc.Read(&m) && !m.Empty() {
			f := &Frame{Mat: m, CameraID: s.id, Seq: s.index + 1, Time: time.Now(),
				Meta: map[string]string{"kind": KindFile, "path": s.spec.Path,
					"index": strconv.FormatUint(s.passRead, 10), "pass": strconv.Itoa(s.pass)}}
			s.index++
			s.passRead++
			return f, nil
		}
		m.Close()
		// End of file (OpenCV does not tell a truncated file from its end).
		if !s.spec.Loop || s.passRead == 0 || attempt > 0 {
			if s.index == 0 {
				return nil, fmt.Errorf("camera %s: video file %s has no frame OpenCV can decode: %w", s.id, s.spec.Path, io.EOF)
			}
			return nil, io.EOF
		}
		s.vc.Close()
		s.vc = nil
		vc, err := s.open()
		if err != nil {
			return nil, err
		}
		s.vc = vc
		s.pass++
		s.passRead = 0
		s.passStart = time.Now()
	}
}

// Info describes the capture.
func (s *CaptureSource) Info() SourceInfo { return s.info }

// Close stops capturing and releases the capture. See Source.Close.
func (s *CaptureSource) Close() error {
	s.once.Do(func() {
		close(s.stop)
		if s.info.Live {
			<-s.done
			s.lmu.Lock()
			closeMat(&s.latest)
			s.lmu.Unlock()
			return
		}
		s.mu.Lock()
		if s.vc != nil {
			s.vc.Close()
			s.vc = nil
		}
		s.mu.Unlock()
	})
	return nil
}
