package fleet

import (
	"strings"
	"testing"
)

func TestFleetYAML(t *testing.T) {
	cfg, err := Load("../../configs/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Broker == "" || cfg.DatasetDir == "" {
		t.Errorf("fleet.yaml should set broker and dataset_dir: %+v", cfg)
	}
}

func TestDefaultValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"mqtt: {broker: localhost}", `mqtt.broker: "localhost" is not a broker address; use one of: embedded, tcp://host:1883, ssl://host:8883`},
		{"shared_group: a/b", `shared_group: "a/b" must not contain`},
		{"retrain: {after_labels: 100}", "retrain.command: is required when after_labels > 0"},
		{"log: {level: chatty}", `log.level: "chatty" is not allowed`},
	}
	for _, tt := range tests {
		cfg, err := Parse(strings.NewReader(tt.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tt.yaml, err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.yaml, err, tt.want)
		}
	}
	if _, err := Parse(strings.NewReader("colector: x")); err == nil || !strings.Contains(err.Error(), "colector") {
		t.Errorf("unknown fields must be rejected, got %v", err)
	}
}
