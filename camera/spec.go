package camera

import (
	"strconv"
	"strings"
	"time"

	"github.com/linesight/linesight/internal/validate"
)

// Source kinds.
const (
	KindDevice    = "device"    // V4L2 index or /dev/videoN
	KindURL       = "url"       // RTSP, HTTP MJPEG or a GStreamer pipeline
	KindFile      = "file"      // a video file
	KindFolder    = "folder"    // image files in a directory
	KindSynthetic = "synthetic" // the procedural magnetic-tile line
)

// Kinds lists the allowed source kinds.
var Kinds = []string{KindDevice, KindURL, KindFile, KindFolder, KindSynthetic}

// Trigger modes and queue policies.
const (
	TriggerFree     = "free"     // capture at a frame rate
	TriggerExternal = "external" // one frame per part, triggered over MQTT or HTTP with a part ID
	DropOldest      = "drop-oldest"
	FailSafe        = "fail-safe" // triggered parts: never dropped silently, flagged late instead
)

// Spec describes one camera as configured: its source, geometry and trigger.
// It is plain data; Open turns it into a Source.
type Spec struct {
	ID      string        `yaml:"id"`
	Source  SourceSpec    `yaml:"source"`
	ROI     *Rect         `yaml:"roi,omitempty"`
	Rotate  int           `yaml:"rotate,omitempty"` // degrees clockwise: 0, 90, 180, 270
	Trigger TriggerSpec   `yaml:"trigger"`
	Queue   QueueSpec     `yaml:"queue"`
	Retry   RetrySpec     `yaml:"retry"`
	Stall   time.Duration `yaml:"stall_timeout,omitempty"` // watchdog: no frame for this long means the stream is down
}

// SourceSpec selects where frames come from.
type SourceSpec struct {
	Kind string `yaml:"kind"`
	// device
	Device string  `yaml:"device,omitempty"` // "0" or "/dev/video0"
	Width  int     `yaml:"width,omitempty"`
	Height int     `yaml:"height,omitempty"`
	FPS    float64 `yaml:"fps,omitempty"`
	FourCC string  `yaml:"fourcc,omitempty"` // e.g. MJPG, YUYV
	// url
	URL string `yaml:"url,omitempty"` // rtsp://, http://, or a GStreamer pipeline ending in appsink
	// file and folder
	Path  string        `yaml:"path,omitempty"`
	Loop  bool          `yaml:"loop,omitempty"`
	Pace  string        `yaml:"pace,omitempty"`  // realtime or fast
	Watch bool          `yaml:"watch,omitempty"` // folder: wait for new files
	Poll  time.Duration `yaml:"poll,omitempty"`  // folder with watch: scan interval (default 200ms)
	// synthetic
	Synthetic SyntheticSpec `yaml:"synthetic,omitempty"`
}

// SyntheticSpec configures the procedural tile line.
type SyntheticSpec struct {
	Seed        int64   `yaml:"seed"`
	Size        int     `yaml:"size"`        // square image side in pixels
	DefectRate  float64 `yaml:"defect_rate"` // share of parts with a defect, 0..1
	ExposureMin float64 `yaml:"exposure_min"`
	ExposureMax float64 `yaml:"exposure_max"`
}

// Rect is a region of interest in source pixels.
type Rect struct {
	X int `yaml:"x"`
	Y int `yaml:"y"`
	W int `yaml:"w"`
	H int `yaml:"h"`
}

// TriggerSpec says when a frame is taken.
type TriggerSpec struct {
	Mode     string        `yaml:"mode"`               // free or external
	FPS      float64       `yaml:"fps,omitempty"`      // free-run rate; 0 means as fast as the source delivers
	Deadline time.Duration `yaml:"deadline,omitempty"` // external: time from trigger to verdict
}

// QueueSpec bounds the queue between capture and inference.
type QueueSpec struct {
	Size   int    `yaml:"size"`
	Policy string `yaml:"policy"` // drop-oldest (free-run) or fail-safe (triggered)
}

// RetrySpec is the capped exponential backoff used to reopen a lost source.
type RetrySpec struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
}

// DefaultSpec returns a synthetic free-running camera with sane defaults;
// configs override what they set.
func DefaultSpec(id string) Spec {
	return Spec{
		ID: id,
		Source: SourceSpec{
			Kind: KindSynthetic,
			Pace: "realtime",
			Synthetic: SyntheticSpec{
				Seed: 1, Size: 256, DefectRate: 0.2, ExposureMin: 0.8, ExposureMax: 1.2,
			},
		},
		Trigger: TriggerSpec{Mode: TriggerFree, FPS: 10, Deadline: 500 * time.Millisecond},
		Queue:   QueueSpec{Size: 8, Policy: DropOldest},
		Retry:   RetrySpec{Initial: 500 * time.Millisecond, Max: 30 * time.Second},
		Stall:   5 * time.Second,
	}
}

// Validate reports every invalid field under v.
func (s *Spec) Validate(v *validate.V) {
	v.Required("id", s.ID, "a short name for this camera, unique on the device (e.g. cam1)")
	src := v.At("source")
	src.OneOf("kind", s.Source.Kind, Kinds...)
	switch s.Source.Kind {
	case KindDevice:
		if s.Source.Device == "" {
			src.Add("device", nil, "is required for kind device: a V4L2 index such as 0 or a path such as /dev/video0")
		} else if _, err := strconv.Atoi(s.Source.Device); err != nil && !strings.HasPrefix(s.Source.Device, "/dev/") {
			src.Add("device", s.Source.Device, "must be a V4L2 index (0, 1, ...) or a /dev/videoN path")
		}
		if s.Source.FourCC != "" && len(s.Source.FourCC) != 4 {
			src.Add("fourcc", s.Source.FourCC, "must be four characters, e.g. MJPG or YUYV")
		}
	case KindURL:
		src.Required("url", s.Source.URL, "rtsp://..., http://... (MJPEG) or a GStreamer pipeline ending in appsink")
	case KindFile, KindFolder:
		src.Required("path", s.Source.Path, "the "+s.Source.Kind+" to read")
	case KindSynthetic:
		syn := src.At("synthetic")
		validate.Range(syn, "size", s.Source.Synthetic.Size, 32, 4096)
		validate.Range(syn, "defect_rate", s.Source.Synthetic.DefectRate, 0, 1)
		if s.Source.Synthetic.ExposureMin <= 0 || s.Source.Synthetic.ExposureMax < s.Source.Synthetic.ExposureMin {
			syn.Add("exposure_min", s.Source.Synthetic.ExposureMin, "must be > 0 and <= exposure_max")
		}
	}
	if s.Source.Kind == KindFolder && s.Source.Watch && s.Source.Loop {
		src.Add("loop", true, "cannot be combined with watch: a watched folder reads each new file once")
	}
	if s.Source.Poll < 0 {
		src.Add("poll", s.Source.Poll.String(), "must be >= 0 (0: 200ms)")
	}
	if s.Source.Pace != "" {
		src.OneOf("pace", s.Source.Pace, "realtime", "fast")
	}
	if s.Source.FPS < 0 {
		src.Add("fps", s.Source.FPS, "must be >= 0")
	}
	if s.ROI != nil && (s.ROI.W <= 0 || s.ROI.H <= 0 || s.ROI.X < 0 || s.ROI.Y < 0) {
		v.Add("roi", *s.ROI, "must have x, y >= 0 and w, h > 0")
	}
	switch s.Rotate {
	case 0, 90, 180, 270:
	default:
		v.Add("rotate", s.Rotate, "is not allowed", "0", "90", "180", "270")
	}
	tr := v.At("trigger")
	tr.OneOf("mode", s.Trigger.Mode, TriggerFree, TriggerExternal)
	if s.Trigger.FPS < 0 {
		tr.Add("fps", s.Trigger.FPS, "must be >= 0 (0: as fast as the source delivers)")
	}
	if s.Trigger.Mode == TriggerExternal && s.Trigger.Deadline <= 0 {
		tr.Add("deadline", s.Trigger.Deadline.String(), "must be > 0 for triggered parts (e.g. 500ms)")
	}
	q := v.At("queue")
	validate.Range(q, "size", s.Queue.Size, 1, 10000)
	q.OneOf("policy", s.Queue.Policy, DropOldest, FailSafe)
	if s.Trigger.Mode == TriggerExternal && s.Queue.Policy == DropOldest {
		q.Add("policy", s.Queue.Policy, "would silently drop triggered parts; use fail-safe with trigger.mode external")
	}
	if s.Retry.Initial <= 0 || s.Retry.Max < s.Retry.Initial {
		v.At("retry").Add("initial", s.Retry.Initial.String(), "must be > 0 and <= retry.max")
	}
	if s.Stall < 0 {
		v.Add("stall_timeout", s.Stall.String(), "must be >= 0 (0 disables the watchdog)")
	}
}
