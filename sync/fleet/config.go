package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/linesight/linesight/internal/cli"
	"github.com/linesight/linesight/internal/validate"
)

// Config is linesight-fleet's configuration.
type Config struct {
	Log cli.LogOptions `yaml:"log"`
	// Listen is host:port of the status page and API.
	Listen string `yaml:"listen"`
	MQTT   MQTT   `yaml:"mqtt"`
	// DatasetDir receives labelled samples in the training layout CLASS/NAME.jpg.
	DatasetDir string `yaml:"dataset_dir"`
	// KeysDir holds the ed25519 signing key for model rollouts.
	KeysDir string `yaml:"keys_dir"`
	// SharedGroup, when set, subscribes through $share/<group>/... so that
	// several collectors split the load (MQTT 5 brokers and mosquitto 2).
	SharedGroup string  `yaml:"shared_group,omitempty"`
	Retrain     Retrain `yaml:"retrain,omitempty"`
}

// MQTT is the fleet's link to the broker.
type MQTT struct {
	// Broker is tcp://host:1883, ssl://host:8883 or "embedded".
	Broker   string `yaml:"broker"`
	Embedded struct {
		Listen string `yaml:"listen"`
	} `yaml:"embedded,omitempty"`
	ClientID string `yaml:"client_id,omitempty"`
	Username string `yaml:"username,omitempty"`
	// Password: set it through LINESIGHT_FLEET_MQTT_PASSWORD.
	Password string `yaml:"password,omitempty"`
	TLS      struct {
		CA   string `yaml:"ca,omitempty"`
		Cert string `yaml:"cert,omitempty"`
		Key  string `yaml:"key,omitempty"`
	} `yaml:"tls,omitempty"`
}

// Retrain optionally runs a training command after enough new labels.
type Retrain struct {
	AfterLabels int    `yaml:"after_labels"` // 0 disables
	Command     string `yaml:"command,omitempty"`
}

// EnvMQTTPassword overrides mqtt.password.
const EnvMQTTPassword = "LINESIGHT_FLEET_MQTT_PASSWORD"

// Default is a single-node fleet with an embedded broker on localhost.
func Default() *Config {
	c := &Config{
		Log:        cli.LogOptions{Format: "auto", Level: "info"},
		Listen:     "127.0.0.1:9090",
		MQTT:       MQTT{Broker: "embedded", ClientID: "linesight-fleet"},
		DatasetDir: "fleet-data/dataset",
		KeysDir:    "fleet-data/keys",
	}
	c.MQTT.Embedded.Listen = "127.0.0.1:1883"
	return c
}

// Parse reads YAML over Default(); unknown fields are errors.
func Parse(r io.Reader) (*Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, errors.New(strings.Join(te.Errors, "\n"))
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	return cfg, nil
}

// Load reads, parses, applies the environment and validates a file; every
// error is a *cli.UsageError naming the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, cli.Usagef("config %s: %w", path, err)
	}
	cfg, err := Parse(bytes.NewReader(data))
	if err != nil {
		return nil, cli.Usagef("config %s: %w", path, err)
	}
	if v, ok := os.LookupEnv(EnvMQTTPassword); ok {
		cfg.MQTT.Password = v
	}
	if err := cfg.Validate(); err != nil {
		return nil, cli.Usagef("config %s is invalid:\n%w", path, err)
	}
	return cfg, nil
}

// Validate reports every invalid field with what is allowed.
func (c *Config) Validate() error {
	v := validate.New("")
	v.At("log").OneOf("format", c.Log.Format, cli.LogFormats...)
	v.At("log").OneOf("level", c.Log.Level, cli.LogLevels...)
	v.Required("listen", c.Listen, "host:port for the status page and API, e.g. 127.0.0.1:9090")
	v.Required("dataset_dir", c.DatasetDir, "the directory labelled samples are written to")
	v.Required("keys_dir", c.KeysDir, "the directory holding the model-signing key")
	mq := v.At("mqtt")
	switch b := c.MQTT.Broker; {
	case b == "embedded":
		mq.At("embedded").Required("listen", c.MQTT.Embedded.Listen, "host:port for the embedded broker")
	case strings.HasPrefix(b, "tcp://"), strings.HasPrefix(b, "ssl://"), strings.HasPrefix(b, "tls://"),
		strings.HasPrefix(b, "ws://"), strings.HasPrefix(b, "wss://"):
	default:
		mq.Add("broker", b, "is not a broker address", "embedded", "tcp://host:1883", "ssl://host:8883")
	}
	if (c.MQTT.TLS.Cert == "") != (c.MQTT.TLS.Key == "") {
		mq.At("tls").Add("key", nil, "cert and key must be given together")
	}
	if strings.ContainsAny(c.SharedGroup, "/+#") {
		v.Add("shared_group", c.SharedGroup, "must not contain '/', '+' or '#'")
	}
	if c.Retrain.AfterLabels < 0 {
		v.At("retrain").Add("after_labels", c.Retrain.AfterLabels, "must be >= 0 (0 disables retraining)")
	}
	if c.Retrain.AfterLabels > 0 && c.Retrain.Command == "" {
		v.At("retrain").Add("command", nil, "is required when after_labels > 0: the training command to run")
	}
	return v.Err()
}
