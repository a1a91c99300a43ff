package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/cli"
	"github.com/linesight/linesight/internal/validate"
)

// Config is the whole edge-agent configuration.
type Config struct {
	Device  Device         `yaml:"device"`
	Log     cli.LogOptions `yaml:"log"`
	DataDir string         `yaml:"data_dir"` // store, images and model versions live here
	Cameras []Camera       `yaml:"cameras"`
	Model   Model          `yaml:"model"`
	Policy  Policy         `yaml:"policy"`
	Monitor Monitor        `yaml:"monitor"`
	Store   Store          `yaml:"store"`
	Review  Review         `yaml:"review"`
	Outputs Outputs        `yaml:"outputs"`
	MQTT    MQTT           `yaml:"mqtt"`
	Sync    Sync           `yaml:"sync"`
}

// Device identifies this line device in the fleet.
type Device struct {
	ID    string   `yaml:"id"`
	Site  string   `yaml:"site"`
	Group []string `yaml:"groups,omitempty"` // rollout groups this device belongs to
}

// Camera is one camera and the automation level its parts are decided at.
type Camera struct {
	camera.Spec `yaml:",inline"`
	// Automation is the degree of automation: human, shadow, assist, partial or full.
	Automation string `yaml:"automation"`
	// Workers run inference and the policy for this camera (default 2: one
	// frame is preprocessed while the other runs).
	Workers int `yaml:"workers,omitempty"`
}

// Model says which model runs and on what.
type Model struct {
	// Path is a model package directory (model.onnx + manifest) or a bare .onnx;
	// empty means the built-in default model.
	Path         string `yaml:"path,omitempty"`
	onnx.Options `yaml:",inline"`
	// Timeout bounds one inference; a part that takes longer gets the
	// fail-safe verdict (default 2s).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// TrustedKeys are the fleet's ed25519 public key files (from
	// linesight-fleet keys gen). With at least one, the device accepts
	// signed model rollouts over MQTT; without, it never changes its model.
	TrustedKeys []string `yaml:"trusted_keys,omitempty"`
}

// Sync is the link to the fleet.
type Sync struct {
	// Uplink drains the store's outbox (labels with their images, events,
	// decisions) to the fleet collector over MQTT and publishes status and
	// telemetry. Off: everything stays in the store.
	Uplink bool `yaml:"uplink"`
	// Decisions also sends every decision to the cloud (not just labels
	// and events): more traffic, a complete record there.
	Decisions bool `yaml:"decisions"`
	// TelemetryEvery is the telemetry period.
	TelemetryEvery time.Duration `yaml:"telemetry_every"`
	// DrainRate caps outbox entries sent per second, so a backlog after an
	// outage never starves the live verdicts.
	DrainRate float64 `yaml:"drain_rate"`
}

// Monitor configures the drift monitor of every camera.
type Monitor struct {
	// Window is how many recent parts are compared with the training reference.
	Window int `yaml:"window"`
	// PSIRaise raises the drift alarm when a statistic's PSI exceeds it;
	// PSIClear clears it when every PSI is below.
	PSIRaise float64 `yaml:"psi_raise"`
	PSIClear float64 `yaml:"psi_clear"`
	// MinSamples is how many parts the monitor needs before it judges.
	MinSamples int `yaml:"min_samples"`
}

// Policy is the guardrail layer's configuration.
type Policy struct {
	// FailSafe is the verdict when inference fails or a deadline is missed: reject or defer (never pass).
	FailSafe string `yaml:"fail_safe"`
	// PassThreshold and RejectThreshold override the model manifest's calibrated
	// thresholds when > 0: a part auto-passes when P(good) >= PassThreshold and
	// auto-rejects when P(defect) >= RejectThreshold.
	PassThreshold   float64 `yaml:"pass_threshold,omitempty"`
	RejectThreshold float64 `yaml:"reject_threshold,omitempty"`
	// AlwaysReview lists classes that always go to a human.
	AlwaysReview []string `yaml:"always_review,omitempty"`
	// MaxDeferRate raises an alarm when the share of deferred parts over the window exceeds it.
	MaxDeferRate float64 `yaml:"max_defer_rate"`
	// AuditSample is the share of automatically decided parts also sent to review (0..1).
	AuditSample float64 `yaml:"audit_sample"`
	// DriftDowngrade lowers the automation level to assist while a drift alarm is active.
	DriftDowngrade bool `yaml:"drift_downgrade"`
}

// Store is the bbolt store and its retention.
type Store struct {
	Path      string        `yaml:"path,omitempty"` // default: <data_dir>/linesight.db
	MaxAge    time.Duration `yaml:"max_age"`
	MaxBytes  ByteSize      `yaml:"max_bytes"`
	JPEGQual  int           `yaml:"jpeg_quality"`
	KeepImage string        `yaml:"keep_images"` // deferred, sampled or all
}

// Review is the operator web UI.
type Review struct {
	Listen string `yaml:"listen"`
	// Auth is users (accounts below), header (trusted reverse-proxy header) or open (no login: demo only).
	Auth       string `yaml:"auth"`
	UserHeader string `yaml:"user_header,omitempty"`
	Users      []User `yaml:"users,omitempty"`
	// SessionKey signs session cookies; set it through LINESIGHT_REVIEW_SESSION_KEY.
	SessionKey string `yaml:"session_key,omitempty"`
}

// User is one UI account; the password is stored as a bcrypt hash.
type User struct {
	Name         string `yaml:"name"`
	Role         string `yaml:"role"` // inspector or supervisor
	PasswordHash string `yaml:"password_hash"`
}

// Outputs are where verdicts go besides the store.
type Outputs struct {
	MQTT    bool    `yaml:"mqtt"` // verdicts to linesight/v1/<site>/<device>/<camera>/decisions
	Webhook Webhook `yaml:"webhook,omitempty"`
	JSONL   string  `yaml:"jsonl,omitempty"` // path of a local JSON-lines sink
}

// Webhook posts each verdict as JSON.
type Webhook struct {
	URL     string        `yaml:"url,omitempty"`
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Token is sent as a bearer token; set it through LINESIGHT_WEBHOOK_TOKEN.
	Token string `yaml:"token,omitempty"`
}

// MQTT is the link to the broker: the plant's, the cloud's, or an embedded one.
type MQTT struct {
	// Broker is tcp://host:1883, ssl://host:8883, or "embedded" to start one in-process.
	Broker   string `yaml:"broker"`
	Embedded struct {
		Listen string `yaml:"listen"`
	} `yaml:"embedded,omitempty"`
	ClientID string `yaml:"client_id,omitempty"` // default: linesight-<device.id>
	Username string `yaml:"username,omitempty"`
	// Password: set it through LINESIGHT_MQTT_PASSWORD.
	Password string `yaml:"password,omitempty"`
	TLS      TLS    `yaml:"tls,omitempty"`
}

// TLS configures client certificates for the MQTT link.
type TLS struct {
	CA   string `yaml:"ca,omitempty"`
	Cert string `yaml:"cert,omitempty"`
	Key  string `yaml:"key,omitempty"`
}

// Automation levels, left to right as trust grows.
var AutomationLevels = []string{"human", "shadow", "assist", "partial", "full"}

// Environment variables that override secrets in the file.
const (
	EnvMQTTUsername     = "LINESIGHT_MQTT_USERNAME"
	EnvMQTTPassword     = "LINESIGHT_MQTT_PASSWORD"
	EnvReviewSessionKey = "LINESIGHT_REVIEW_SESSION_KEY"
	EnvWebhookToken     = "LINESIGHT_WEBHOOK_TOKEN"
)

// Default returns the demo configuration: one synthetic camera, the
// built-in model on CPU, an embedded broker and an open review UI on
// localhost.
func Default() *Config {
	cam := camera.DefaultSpec("cam1")
	return &Config{
		Device:  Device{ID: "demo-01", Site: "demo"},
		Log:     cli.LogOptions{Format: "auto", Level: "info"},
		DataDir: "data",
		Cameras: []Camera{{Spec: cam, Automation: "partial"}},
		// CPU by default: the demo runs anywhere, and no native error is
		// printed for an accelerator the machine lacks. Line configs name theirs.
		Model: Model{Options: onnx.Options{Provider: onnx.ProviderCPU, Sessions: 1, CPUs: "auto"}},
		Policy: Policy{
			FailSafe:     "reject",
			MaxDeferRate: 0.2,
			AuditSample:  0.05,
		},
		Sync:    Sync{TelemetryEvery: 10 * time.Second, DrainRate: 2000},
		Monitor: Monitor{Window: 500, PSIRaise: 0.25, PSIClear: 0.1, MinSamples: 200},
		Store: Store{
			MaxAge:    30 * 24 * time.Hour,
			MaxBytes:  10 << 30,
			JPEGQual:  90,
			KeepImage: "deferred",
		},
		Review:  Review{Listen: "127.0.0.1:8080", Auth: "open"},
		Outputs: Outputs{MQTT: true},
		MQTT: MQTT{Broker: "embedded", Embedded: struct {
			Listen string `yaml:"listen"`
		}{Listen: "127.0.0.1:1883"}},
	}
}

// Parse reads YAML over Default(). Unknown fields are errors, so a typo is
// caught rather than silently ignored. Cameras listed in the file replace the
// default camera, and each entry starts from camera.DefaultSpec, so a camera
// need only say what differs from the defaults.
func Parse(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	// Pass 1: strict decode of the file as written, for errors with the
	// file's own line numbers (unknown fields, wrong types).
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(new(Config)); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	// Pass 2: decode over the defaults, with every camera entry merged over
	// the default camera (yaml.v3 builds list elements from zero values).
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	if len(doc.Content) == 0 {
		return cfg, nil // empty file: all defaults
	}
	if cams := mappingValue(doc.Content[0], "cameras"); cams != nil && cams.Kind == yaml.SequenceNode {
		for i, item := range cams.Content {
			var def yaml.Node
			if err := def.Encode(Camera{Spec: camera.DefaultSpec(fmt.Sprintf("cam%d", i+1)), Automation: "partial"}); err != nil {
				return nil, fmt.Errorf("encode camera defaults: %w", err)
			}
			cams.Content[i] = mergeNodes(&def, item)
		}
	}
	if err := doc.Decode(cfg); err != nil {
		return nil, yamlError(err)
	}
	return cfg, nil
}

// mappingValue returns the value node of key in a mapping node, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mergeNodes overlays src on dst: keys in src win; nested mappings merge.
func mergeNodes(dst, src *yaml.Node) *yaml.Node {
	if dst.Kind == yaml.DocumentNode {
		dst = dst.Content[0]
	}
	if dst.Kind != yaml.MappingNode || src.Kind != yaml.MappingNode {
		return src
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		if cur := mappingValue(dst, k.Value); cur != nil {
			merged := mergeNodes(cur, v)
			for j := 0; j+1 < len(dst.Content); j += 2 {
				if dst.Content[j].Value == k.Value {
					dst.Content[j+1] = merged
				}
			}
			continue
		}
		dst.Content = append(dst.Content, k, v)
	}
	return dst
}

// Load reads and parses a file, applies environment overrides and validates.
// Every error it returns is a *cli.UsageError naming the file.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, cli.Usagef("config %s: %w", path, err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return nil, cli.Usagef("config %s: %w", path, err)
	}
	cfg.ApplyEnv(os.LookupEnv)
	if err := cfg.Validate(); err != nil {
		return nil, cli.Usagef("config %s is invalid:\n%w", path, err)
	}
	return cfg, nil
}

// ApplyEnv overrides secrets from the environment (lookup is os.LookupEnv
// in production, a map in tests).
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) {
	set := func(dst *string, name string) {
		if v, ok := lookup(name); ok {
			*dst = v
		}
	}
	set(&c.MQTT.Username, EnvMQTTUsername)
	set(&c.MQTT.Password, EnvMQTTPassword)
	set(&c.Review.SessionKey, EnvReviewSessionKey)
	set(&c.Outputs.Webhook.Token, EnvWebhookToken)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Validate reports every invalid field, each naming what is allowed.
func (c *Config) Validate() error {
	v := validate.New("")
	dev := v.At("device")
	if !idPattern.MatchString(c.Device.ID) {
		dev.Add("id", c.Device.ID, "must be 1-64 letters, digits, '-' or '_' (it becomes part of MQTT topics)")
	}
	if !idPattern.MatchString(c.Device.Site) {
		dev.Add("site", c.Device.Site, "must be 1-64 letters, digits, '-' or '_' (it becomes part of MQTT topics)")
	}
	log := v.At("log")
	log.OneOf("format", c.Log.Format, cli.LogFormats...)
	log.OneOf("level", c.Log.Level, cli.LogLevels...)
	v.Required("data_dir", c.DataDir, "a writable directory for the store, images and models")

	if len(c.Cameras) == 0 {
		v.Add("cameras", nil, "must list at least one camera")
	}
	seen := map[string]bool{}
	for i := range c.Cameras {
		cv := v.Index("cameras", i)
		c.Cameras[i].Spec.Validate(cv)
		cv.OneOf("automation", c.Cameras[i].Automation, AutomationLevels...)
		validate.Range(cv, "workers", c.Cameras[i].Workers, 0, 64)
		if id := c.Cameras[i].ID; id != "" {
			if !idPattern.MatchString(id) {
				cv.Add("id", id, "must be 1-64 letters, digits, '-' or '_'")
			}
			if seen[id] {
				cv.Add("id", id, "is used by another camera; camera ids must be unique")
			}
			seen[id] = true
		}
	}

	c.Model.Options.Validate(v.At("model"))
	if c.Model.Timeout < 0 {
		v.At("model").Add("timeout", c.Model.Timeout.String(), "must be positive (e.g. 2s) or left out for the default")
	}
	for i, k := range c.Model.TrustedKeys {
		if k == "" {
			v.At("model").Add(fmt.Sprintf("trusted_keys[%d]", i), k, "is empty: name a public key file from linesight-fleet keys gen")
		}
	}
	sy := v.At("sync")
	if c.Sync.TelemetryEvery < time.Second {
		sy.Add("telemetry_every", c.Sync.TelemetryEvery.String(), "must be at least 1s (e.g. 10s)")
	}
	validate.Range(sy, "drain_rate", c.Sync.DrainRate, 1, 1e6)
	if (c.Sync.Uplink || len(c.Model.TrustedKeys) > 0) && c.MQTT.Broker == "" {
		sy.Add("uplink", c.Sync.Uplink, "needs mqtt.broker (embedded or the fleet's tcp://, ssl:// address)")
	}
	mon := v.At("monitor")
	validate.Range(mon, "window", c.Monitor.Window, 50, 100000)
	validate.Range(mon, "min_samples", c.Monitor.MinSamples, 20, 100000)
	validate.Range(mon, "psi_raise", c.Monitor.PSIRaise, 0.01, 10)
	validate.Range(mon, "psi_clear", c.Monitor.PSIClear, 0.001, 10)
	if c.Monitor.PSIClear > c.Monitor.PSIRaise {
		mon.Add("psi_clear", c.Monitor.PSIClear, "must not be above psi_raise (the alarm clears below it)")
	}

	pol := v.At("policy")
	pol.OneOf("fail_safe", c.Policy.FailSafe, "reject", "defer")
	validate.Range(pol, "pass_threshold", c.Policy.PassThreshold, 0, 1)
	validate.Range(pol, "reject_threshold", c.Policy.RejectThreshold, 0, 1)
	validate.Range(pol, "max_defer_rate", c.Policy.MaxDeferRate, 0, 1)
	validate.Range(pol, "audit_sample", c.Policy.AuditSample, 0, 1)

	st := v.At("store")
	if c.Store.MaxAge < time.Hour {
		st.Add("max_age", c.Store.MaxAge.String(), "must be at least 1h (e.g. 720h for 30 days)")
	}
	if c.Store.MaxBytes < 16<<20 {
		st.Add("max_bytes", c.Store.MaxBytes.String(), "must be at least 16MiB (e.g. 10GiB)")
	}
	validate.Range(st, "jpeg_quality", c.Store.JPEGQual, 1, 100)
	st.OneOf("keep_images", c.Store.KeepImage, "deferred", "sampled", "all")

	rv := v.At("review")
	rv.Required("listen", c.Review.Listen, "host:port for the operator UI, e.g. 127.0.0.1:8080")
	rv.OneOf("auth", c.Review.Auth, "users", "header", "open")
	switch c.Review.Auth {
	case "users":
		if len(c.Review.Users) == 0 {
			rv.Add("users", nil, "must list at least one user when auth is users (password hashes from: linesight user hash)")
		}
		for i, u := range c.Review.Users {
			uv := rv.Index("users", i)
			uv.Required("name", u.Name, "the login name")
			uv.OneOf("role", u.Role, "inspector", "supervisor")
			if !strings.HasPrefix(u.PasswordHash, "$2") {
				uv.Add("password_hash", nil, "must be a bcrypt hash ($2a$/$2b$...), never a plain password")
			}
		}
	case "header":
		rv.Required("user_header", c.Review.UserHeader, "the header your reverse proxy sets to the authenticated user, e.g. X-Forwarded-User")
	}

	if c.Outputs.Webhook.URL != "" && !strings.HasPrefix(c.Outputs.Webhook.URL, "http://") && !strings.HasPrefix(c.Outputs.Webhook.URL, "https://") {
		v.At("outputs.webhook").Add("url", c.Outputs.Webhook.URL, "must start with http:// or https://")
	}

	mq := v.At("mqtt")
	switch {
	case c.MQTT.Broker == "embedded":
		mq.At("embedded").Required("listen", c.MQTT.Embedded.Listen, "host:port for the embedded broker, e.g. 127.0.0.1:1883")
	case strings.HasPrefix(c.MQTT.Broker, "tcp://"), strings.HasPrefix(c.MQTT.Broker, "ssl://"),
		strings.HasPrefix(c.MQTT.Broker, "tls://"), strings.HasPrefix(c.MQTT.Broker, "ws://"), strings.HasPrefix(c.MQTT.Broker, "wss://"):
	case c.MQTT.Broker == "":
		// no link: the device runs fully offline and buffers everything.
	default:
		mq.Add("broker", c.MQTT.Broker, "is not a broker address", "embedded", "tcp://host:1883", "ssl://host:8883", "ws://host:port", "\"\" (offline)")
	}
	if (c.MQTT.TLS.Cert == "") != (c.MQTT.TLS.Key == "") {
		mq.At("tls").Add("key", nil, "cert and key must be given together")
	}
	return v.Err()
}

// yamlError turns yaml.v3's messages into ones that say what to do.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			m = strings.TrimPrefix(m, "yaml: ")
			if i := strings.Index(m, "field "); i >= 0 && strings.Contains(m, " not found in type ") {
				name := strings.TrimSuffix(m[i+len("field "):strings.Index(m, " not found in type ")], "")
				m = m[:i] + fmt.Sprintf("unknown field %q (check its spelling and indentation against configs/ and the README's configuration reference)", name)
			}
			if strings.Contains(m, "into time.Duration") {
				m += " (write a duration such as 500ms, 30s or 720h)"
			}
			msgs[i] = m
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	return fmt.Errorf("not valid YAML: %w", err)
}
