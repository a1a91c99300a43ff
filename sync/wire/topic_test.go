package wire

import (
	"errors"
	"testing"
)

func TestTopicBuilders(t *testing.T) {
	tests := []struct{ got, want string }{
		{Topic("s1", "d1", KindStatus), "linesight/v1/s1/d1/status"},
		{Topic("s1", "d1", KindSamples), "linesight/v1/s1/d1/samples"},
		{Topic("s1", "d1", KindModelState), "linesight/v1/s1/d1/model/state"},
		{Topic("s1", "d1", KindAck), "linesight/v1/s1/d1/ack"},
		{Topic("s1", "d1", KindCommand), "linesight/v1/s1/d1/cmd"},
		{CameraTopic("s1", "d1", "cam-1", KindDecisions), "linesight/v1/s1/d1/cam-1/decisions"},
		{CameraTopic("s1", "d1", "cam-1", KindTrigger), "linesight/v1/s1/d1/cam-1/trigger"},
		{DeviceFilter("s1", "d1"), "linesight/v1/s1/d1/#"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Topic of a per-camera kind should panic")
		}
	}()
	Topic("s", "d", KindDecisions)
}

func TestUpFilters(t *testing.T) {
	shared, all := UpFilters("g1")
	if shared[0] != "$share/g1/linesight/v1/+/+/samples" || all[0] != "linesight/v1/+/+/status" {
		t.Errorf("shared %v all %v", shared, all)
	}
	shared, _ = UpFilters("")
	if shared[2] != "linesight/v1/+/+/+/decisions" {
		t.Errorf("unshared %v", shared)
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		topic string
		want  Address
		err   bool
	}{
		{"linesight/v1/s/d/status", Address{Site: "s", Device: "d", Kind: KindStatus}, false},
		{"linesight/v1/s/d/telemetry", Address{Site: "s", Device: "d", Kind: KindTelemetry}, false},
		{"linesight/v1/s/d/events", Address{Site: "s", Device: "d", Kind: KindEvents}, false},
		{"linesight/v1/s/d/samples", Address{Site: "s", Device: "d", Kind: KindSamples}, false},
		{"linesight/v1/s/d/model/state", Address{Site: "s", Device: "d", Kind: KindModelState}, false},
		{"linesight/v1/s/d/model/offer", Address{Site: "s", Device: "d", Kind: KindModelOffer}, false},
		{"linesight/v1/s/d/model/chunk", Address{Site: "s", Device: "d", Kind: KindModelChunk}, false},
		{"linesight/v1/s/d/model/request", Address{Site: "s", Device: "d", Kind: KindModelRequest}, false},
		{"linesight/v1/s/d/cmd", Address{Site: "s", Device: "d", Kind: KindCommand}, false},
		{"linesight/v1/s/d/config", Address{Site: "s", Device: "d", Kind: KindConfig}, false},
		{"linesight/v1/s/d/ack", Address{Site: "s", Device: "d", Kind: KindAck}, false},
		{"linesight/v1/s/d/cam_2/decisions", Address{Site: "s", Device: "d", Camera: "cam_2", Kind: KindDecisions}, false},
		{"linesight/v1/s/d/cam_2/trigger", Address{Site: "s", Device: "d", Camera: "cam_2", Kind: KindTrigger}, false},
		{"linesight/v2/s/d/status", Address{}, true},
		{"linesight/v1/s/d", Address{}, true},
		{"linesight/v1/s/d/unknown", Address{}, true},
		{"linesight/v1/s/d/decisions", Address{}, true},
		{"linesight/v1/s/d/cam/status", Address{}, true},
		{"linesight/v1/s/d/model/bogus", Address{}, true},
		{"linesight/v1/+/d/status", Address{}, true},
		{"linesight/v1/s/#/status", Address{}, true},
		{"linesight/v1//d/status", Address{}, true},
		{"linesight/v1/s/d/c/x/decisions", Address{}, true},
	}
	for _, k := range []Kind{KindStatus, KindTelemetry, KindEvents, KindSamples, KindDecisions, KindModelState, KindModelRequest} {
		if !k.Up() {
			t.Errorf("%s should be an up-link kind", k)
		}
	}
	for _, k := range []Kind{KindCommand, KindConfig, KindAck, KindModelOffer, KindModelChunk, KindTrigger} {
		if k.Up() {
			t.Errorf("%s should be a down-link kind", k)
		}
	}
	for _, tt := range tests {
		got, err := ParseTopic(tt.topic)
		if tt.err {
			if !errors.Is(err, ErrTopic) {
				t.Errorf("%s: want ErrTopic, got %v (%+v)", tt.topic, err, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v %v, want %+v", tt.topic, got, err, tt.want)
		}
		if got.String() != tt.topic {
			t.Errorf("%s: String() = %s", tt.topic, got.String())
		}
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "Line-3_b": true, "": false, "a/b": false, "+": false, "#": false, "é": false, string(make([]byte, 65)): false} {
		if ValidID(s) != want {
			t.Errorf("ValidID(%q) = %v", s, !want)
		}
	}
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"linesight/v1/s/d/status", "linesight/v1/s/d/c/decisions", "linesight/v1/s/d/model/state", "x", "linesight/v1/s/d/model/decisions"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		a, err := ParseTopic(topic)
		if err != nil {
			return
		}
		if a.String() != topic {
			t.Fatalf("%q parsed to %+v which prints %q", topic, a, a.String())
		}
	})
}
