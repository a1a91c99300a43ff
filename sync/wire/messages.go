package wire

import (
	"encoding/json"
	"fmt"
	"time"
)

// ModelRef names a model version.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Device states in Status.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// Status is the device's retained presence on its status topic. The uplink
// publishes State "online" on every connection and registers State
// "offline" as its last will; a clean shutdown publishes "offline" itself.
type Status struct {
	State   string          `json:"state"`
	Agent   string          `json:"agent,omitempty"` // agent version
	Model   ModelRef        `json:"model,omitzero"`
	Cameras []CameraSummary `json:"cameras,omitempty"`
	Since   time.Time       `json:"since,omitzero"`
}

// CameraSummary is one camera's automation level and health.
type CameraSummary struct {
	ID     string `json:"id"`
	Level  string `json:"level,omitempty"`  // policy level name: human, shadow, assist, partial, full
	Health string `json:"health,omitempty"` // ok, degraded, down
}

// Telemetry is a periodic snapshot (not kept in the outbox; a missed one is
// simply missed).
type Telemetry struct {
	// Interval the figures cover.
	Interval time.Duration   `json:"interval_ns"`
	Model    ModelRef        `json:"model,omitzero"`
	Cameras  []CameraMetrics `json:"cameras,omitempty"`
	Disk     Disk            `json:"disk"`
	// Outbox is how many entries wait for the collector's ack.
	Outbox uint64 `json:"outbox"`
	Health string `json:"health,omitempty"` // ok, degraded, down
}

// CameraMetrics are one camera's figures over the interval.
type CameraMetrics struct {
	ID         string  `json:"id"`
	Level      string  `json:"level,omitempty"`
	Parts      uint64  `json:"parts"`
	Throughput float64 `json:"throughput"` // parts per second
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	DeferRate  float64 `json:"defer_rate"` // 0..1
	Drift      float64 `json:"drift"`      // drift statistic; 0 none
	Health     string  `json:"health,omitempty"`
}

// Disk is the store's use of its budget.
type Disk struct {
	UsedBytes   int64 `json:"used_bytes"`
	BudgetBytes int64 `json:"budget_bytes,omitempty"` // 0: no budget
}

// Event is an alarm or state change. Body is the agent's own JSON.
type Event struct {
	Code     string          `json:"code"`
	Severity string          `json:"severity,omitempty"` // info, warning, error
	Camera   string          `json:"camera,omitempty"`
	Message  string          `json:"message,omitempty"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

// Score is one class's probability.
type Score struct {
	Label string  `json:"label"`
	P     float64 `json:"p"`
}

// Decision is one inspection's verdict, on <camera>/decisions. Its fields
// are a subset of the store's inspection record, which decodes into it.
type Decision struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Camera  string    `json:"camera"`
	PartID  string    `json:"part_id,omitempty"`
	Model   ModelRef  `json:"model"`
	Top     string    `json:"top,omitempty"`
	Scores  []Score   `json:"scores,omitempty"`
	Verdict string    `json:"verdict"` // pass, reject, defer
	Reason  string    `json:"reason"`
	Level   string    `json:"level"`
}

// Image is an encoded picture: Data is JPEG, base64 in JSON, and SHA256 the
// hex sha256 of the JPEG bytes.
type Image struct {
	Format string `json:"format"` // "jpeg"
	SHA256 string `json:"sha256"`
	Data   []byte `json:"data"`
}

// NewImage wraps JPEG bytes.
func NewImage(jpeg []byte) *Image {
	return &Image{Format: "jpeg", SHA256: SHA256(jpeg), Data: jpeg}
}

// Sample is a labelled inspection for the retraining set, on samples. The
// envelope ID is the label's outbox entry ("label-<label ID>").
type Sample struct {
	LabelID  string    `json:"label_id"` // "<inspection ID>-l<revision>"
	ItemID   string    `json:"item_id"`  // the inspection
	Camera   string    `json:"camera"`
	Class    string    `json:"class"` // the inspector's label: the dataset folder
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Revision int       `json:"revision"`
	// Supersedes is the label a correction replaces.
	Supersedes string `json:"supersedes,omitempty"`
	Note       string `json:"note,omitempty"`
	// What the model suggested.
	Suggested    string   `json:"suggested,omitempty"`
	ModelVerdict string   `json:"model_verdict,omitempty"`
	Model        ModelRef `json:"model"`
	// Inspection is the decision the label corrects or confirms.
	Inspection Decision `json:"inspection"`
	// Image is nil when the device no longer had it (never expected: the
	// store keeps a pending label's image).
	Image *Image `json:"image,omitempty"`
}

// Command ops.
const (
	OpSetLevel = "set-level"
	OpTrigger  = "trigger"
	OpRollback = "rollback"
	// OpPromote promotes the candidate the device runs in shadow (an offer
	// pushed with manual criteria) to active.
	OpPromote = "promote"
)

// Command is an operator's order to a device, on cmd.
type Command struct {
	Op     string `json:"op"`
	Camera string `json:"camera,omitempty"`
	Level  string `json:"level,omitempty"`   // set-level: the policy level name
	PartID string `json:"part_id,omitempty"` // trigger
	By     string `json:"by"`                // who ordered it (audit)
	Reason string `json:"reason,omitempty"`
}

// Config is a settings push, on config. Settings are dotted configuration
// keys with string values; the device applies those it allows at runtime.
type Config struct {
	Revision int               `json:"revision"`
	Settings map[string]string `json:"settings"`
}

// Ack is the collector's receipt, on the device's ack topic: the device may
// forget IDs. Rejected IDs will never be accepted (invalid content); the
// device drops them and logs why.
type Ack struct {
	IDs      []string   `json:"ids"`
	Rejected []Rejected `json:"rejected,omitempty"`
	// Accept lists the encodings the collector takes besides the JSON
	// envelope (AcceptSampleFrame), so that the device may use them. Older
	// collectors leave it out and older devices ignore it.
	Accept []string `json:"accept,omitempty"`
}

// Rejected is one refused message.
type Rejected struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// DecodeStatus decodes a status envelope.
func DecodeStatus(data []byte) (Envelope, Status, error) {
	var s Status
	e, err := decodeBody(data, TypeStatus, &s)
	if err == nil && s.State != StateOnline && s.State != StateOffline {
		err = fmt.Errorf("decode status: %w: state %q", ErrMalformed, s.State)
	}
	return e, s, err
}

// DecodeTelemetry decodes a telemetry envelope.
func DecodeTelemetry(data []byte) (Envelope, Telemetry, error) {
	var t Telemetry
	e, err := decodeBody(data, TypeTelemetry, &t)
	return e, t, err
}

// DecodeEvent decodes an event envelope.
func DecodeEvent(data []byte) (Envelope, Event, error) {
	var ev Event
	e, err := decodeBody(data, TypeEvent, &ev)
	return e, ev, err
}

// DecodeDecision decodes a decision envelope.
func DecodeDecision(data []byte) (Envelope, Decision, error) {
	var d Decision
	e, err := decodeBody(data, TypeDecision, &d)
	return e, d, err
}

// DecodeSample decodes a sample, from a JSON envelope or a sample frame
// (IsFrame; its image data is then a slice of data), and checks it: an ID,
// a class usable as a folder name, a valid item ID, and an image that
// matches its sha256.
func DecodeSample(data []byte) (Envelope, Sample, error) {
	e, s, err := decodeSample(data)
	if err != nil {
		return e, s, err
	}
	if err := s.Validate(); err != nil {
		return e, s, err
	}
	if e.ID == "" {
		return e, s, fmt.Errorf("decode sample: %w: no id", ErrMalformed)
	}
	return e, s, nil
}

func decodeSample(data []byte) (Envelope, Sample, error) {
	if IsFrame(data) {
		return decodeFrame(data)
	}
	if e, s, ok := decodeSampleFast(data); ok {
		return e, s, nil
	}
	var s Sample
	e, err := decodeBody(data, TypeSample, &s)
	return e, s, err
}

// Validate checks what the collector relies on: the class and item ID
// become path names, the image must match its checksum.
func (s *Sample) Validate() error {
	switch {
	case !ValidID(s.Class):
		return fmt.Errorf("sample: %w: class %q must be 1-64 letters, digits, '-' or '_'", ErrMalformed, s.Class)
	case !validRecordID(s.ItemID):
		return fmt.Errorf("sample: %w: bad item id %q", ErrMalformed, s.ItemID)
	case !validRecordID(s.LabelID):
		return fmt.Errorf("sample: %w: bad label id %q", ErrMalformed, s.LabelID)
	case s.Image != nil && len(s.Image.Data) > MaxImage:
		return fmt.Errorf("sample: %w: image of %d bytes", ErrTooLarge, len(s.Image.Data))
	case s.Image != nil && s.Image.Format != "jpeg":
		return fmt.Errorf("sample: %w: image format %q (want jpeg)", ErrMalformed, s.Image.Format)
	case s.Image != nil && SHA256(s.Image.Data) != s.Image.SHA256:
		return fmt.Errorf("sample %s: %w", s.LabelID, ErrChecksum)
	}
	return nil
}

// DecodeCommand decodes a command and checks its op and fields.
func DecodeCommand(data []byte) (Envelope, Command, error) {
	var c Command
	e, err := decodeBody(data, TypeCommand, &c)
	if err != nil {
		return e, c, err
	}
	switch {
	case c.Op != OpSetLevel && c.Op != OpTrigger && c.Op != OpRollback && c.Op != OpPromote:
		err = fmt.Errorf("decode command: %w: op %q (want %s, %s, %s or %s)", ErrMalformed, c.Op, OpSetLevel, OpTrigger, OpRollback, OpPromote)
	case c.Op != OpRollback && c.Op != OpPromote && !ValidID(c.Camera):
		err = fmt.Errorf("decode command %s: %w: camera %q", c.Op, ErrMalformed, c.Camera)
	case c.Op == OpSetLevel && c.Level == "":
		err = fmt.Errorf("decode command %s: %w: no level", c.Op, ErrMalformed)
	}
	return e, c, err
}

// DecodeConfig decodes a config push.
func DecodeConfig(data []byte) (Envelope, Config, error) {
	var c Config
	e, err := decodeBody(data, TypeConfig, &c)
	return e, c, err
}

// DecodeAck decodes an ack.
func DecodeAck(data []byte) (Envelope, Ack, error) {
	var a Ack
	e, err := decodeBody(data, TypeAck, &a)
	return e, a, err
}
