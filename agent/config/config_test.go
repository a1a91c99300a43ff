package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linesight/linesight/internal/cli"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() must validate:\n%v", err)
	}
}

// TestConfigsDirectory loads every edge-agent file in configs/ the way
// `linesight config check` does. fleet.yaml belongs to linesight-fleet and
// is checked by sync/fleet's tests.
func TestConfigsDirectory(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("want the example configs in configs/, got %v (%v)", files, err)
	}
	for _, f := range files {
		if filepath.Base(f) == "fleet.yaml" {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Cameras) == 0 {
				t.Error("no cameras")
			}
		})
	}
}

func TestParseOverDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
device: {id: d7, site: s1}
cameras:
  - id: a
    source: {kind: folder, path: /data/in}
  - id: b
    source: {kind: file, path: /v.avi}
    automation: shadow
store:
  max_bytes: 512MiB
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Device.ID != "d7" || cfg.Log.Level != "info" {
		t.Errorf("file values must override defaults and keep the rest: %+v", cfg.Device)
	}
	if len(cfg.Cameras) != 2 {
		t.Fatalf("cameras in the file replace the default camera, got %d", len(cfg.Cameras))
	}
	a := cfg.Cameras[0]
	if a.Automation != "partial" || a.Queue.Size != 8 || a.Trigger.Mode != "free" || a.Retry.Max != 30*time.Second {
		t.Errorf("a camera entry should start from the camera defaults: %+v", a)
	}
	if cfg.Cameras[1].Automation != "shadow" {
		t.Errorf("automation not read")
	}
	if cfg.Store.MaxBytes != 512<<20 {
		t.Errorf("max_bytes = %d", cfg.Store.MaxBytes)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "device:\n  id: x\n  sight: y\n", `line 3: unknown field "sight"`},
		{"bad yaml", "device: [\n", "not valid YAML"},
		{"wrong type", "cameras: 3\n", "cannot unmarshal"},
		{"bad size", "store:\n  max_bytes: lots\n", "write e.g. 512MiB"},
		{"bad duration", "store:\n  max_age: forever\n", "line 2: cannot unmarshal !!str `forever` into time.Duration (write a duration such as 500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestValidateGolden pins the messages for a config with many mistakes: each
// names the field, the value and what is allowed.
func TestValidateGolden(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
device: {id: "bad id", site: ""}
log: {format: xml, level: loud}
cameras:
  - id: cam1
    automation: autopilot
    source: {kind: usb}
    rotate: 45
    trigger: {mode: external, deadline: 0s}
    queue: {size: 0, policy: drop-oldest}
  - id: cam1
    source: {kind: device, device: webcam, fourcc: MJPEG}
model: {provider: gpu, accelerators: [cpu, npu], sessions: 0, cpus: "3-1"}
policy: {fail_safe: pass, max_defer_rate: 1.5}
store: {max_age: 10m, jpeg_quality: 0, keep_images: some}
review: {auth: users}
outputs: {webhook: {url: "ftp://x"}}
mqtt: {broker: "mqtt.example:1883", tls: {cert: c.pem}}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Validate()
	if got == nil {
		t.Fatal("want validation errors")
	}
	golden := filepath.Join("testdata", "invalid.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.Error()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got.Error()+"\n" != string(want) {
		t.Errorf("validation messages differ from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

func TestLoadErrorsAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("policy: {fail_safe: pass}\n"), 0o644)
	for _, path := range []string{filepath.Join(dir, "missing.yaml"), bad} {
		_, err := Load(path)
		var u *cli.UsageError
		if !errors.As(err, &u) {
			t.Errorf("Load(%s) error should be a usage error (exit 2), got %T %v", path, err, err)
		}
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Errorf("error should name the file: %v", err)
		}
	}
	_, err := Load(bad)
	if !strings.Contains(err.Error(), `policy.fail_safe: "pass" is not allowed; use one of: reject, defer`) {
		t.Errorf("error should name field and allowed values: %v", err)
	}
}

func TestApplyEnv(t *testing.T) {
	cfg := Default()
	cfg.MQTT.Password = "from-file"
	env := map[string]string{EnvMQTTPassword: "s3cret", EnvReviewSessionKey: "k", EnvWebhookToken: "tok"}
	cfg.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if cfg.MQTT.Password != "s3cret" || cfg.Review.SessionKey != "k" || cfg.Outputs.Webhook.Token != "tok" {
		t.Errorf("environment must override secrets: %+v %+v", cfg.MQTT, cfg.Review)
	}
	if cfg.MQTT.Username != "" {
		t.Errorf("unset variables must leave values alone")
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
	}{
		{"1024", 1024}, {"512MiB", 512 << 20}, {"10GiB", 10 << 30}, {"2GB", 2e9}, {"1.5KiB", 1536}, {"7B", 7},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-1", "ten", "5XB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) should fail", bad)
		}
	}
	if s := ByteSize(10 << 30).String(); s != "10GiB" {
		t.Errorf("String() = %s", s)
	}
}
