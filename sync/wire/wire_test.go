package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func sample() Sample {
	img := []byte("\xff\xd8\xff\xe0fake jpeg\xff\xd9")
	return Sample{
		LabelID: "0000000000000001-abcd-00000001-l1", ItemID: "0000000000000001-abcd-00000001",
		Camera: "cam1", Class: "scratch", By: "ana", At: t0, Revision: 1,
		Suggested: "ok", ModelVerdict: "defer", Model: ModelRef{Name: "tilenet", Version: "3"},
		Inspection: Decision{ID: "0000000000000001-abcd-00000001", Time: t0, Camera: "cam1", Model: ModelRef{Name: "tilenet", Version: "3"},
			Top: "ok", Scores: []Score{{"ok", 0.6}, {"scratch", 0.4}}, Verdict: "defer", Reason: "uncertain", Level: "partial"},
		Image: NewImage(img),
	}
}

// golden encodes every message type and compares with testdata/<name>.json.
func TestGolden(t *testing.T) {
	msgs := []struct {
		name string
		env  Envelope
		body any
	}{
		{"status", Envelope{Type: TypeStatus, Device: "d1", Time: t0}, Status{State: StateOnline, Agent: "1.0", Model: ModelRef{"tilenet", "3"}, Cameras: []CameraSummary{{ID: "cam1", Level: "partial", Health: "ok"}}, Since: t0}},
		{"status-offline", Envelope{Type: TypeStatus, Device: "d1", Time: t0}, Status{State: StateOffline}},
		{"telemetry", Envelope{Type: TypeTelemetry, Device: "d1", Time: t0}, Telemetry{Interval: 10 * time.Second, Model: ModelRef{"tilenet", "3"}, Cameras: []CameraMetrics{{ID: "cam1", Level: "partial", Parts: 100, Throughput: 10, LatencyP50: 12.5, LatencyP99: 30, DeferRate: 0.05, Drift: 0.1, Health: "ok"}}, Disk: Disk{UsedBytes: 1 << 30, BudgetBytes: 8 << 30}, Outbox: 3, Health: "ok"}},
		{"event", Envelope{Type: TypeEvent, ID: "event-1", Device: "d1", Time: t0, Ack: true}, Event{Code: "defer-rate-high", Severity: "warning", Camera: "cam1", Message: "defer rate 0.3 over 0.2"}},
		{"decision", Envelope{Type: TypeDecision, ID: "decision-0000000000000001-abcd-00000001", Device: "d1", Time: t0, Ack: true}, sample().Inspection},
		{"sample", Envelope{Type: TypeSample, ID: "label-0000000000000001-abcd-00000001-l1", Device: "d1", Time: t0, Ack: true}, sample()},
		{"command-level", Envelope{Type: TypeCommand, Time: t0}, Command{Op: OpSetLevel, Camera: "cam1", Level: "assist", By: "fleet:maria", Reason: "drift"}},
		{"command-trigger", Envelope{Type: TypeCommand, Time: t0}, Command{Op: OpTrigger, Camera: "cam1", PartID: "p-77", By: "fleet:maria"}},
		{"command-rollback", Envelope{Type: TypeCommand, Time: t0}, Command{Op: OpRollback, By: "fleet:maria"}},
		{"command-promote", Envelope{Type: TypeCommand, Time: t0}, Command{Op: OpPromote, By: "fleet:maria", Reason: "shadow looks good"}},
		{"config", Envelope{Type: TypeConfig, Time: t0}, Config{Revision: 2, Settings: map[string]string{"policy.audit_sample": "0.02"}}},
		{"ack", Envelope{Type: TypeAck, Time: t0}, Ack{IDs: []string{"label-x-l1", "decision-y"}, Rejected: []Rejected{{ID: "label-z-l1", Error: "sample: malformed message: class \"\""}}, Accept: []string{AcceptSampleFrame}}},
	}
	for _, m := range msgs {
		want := golden(t, m.name, m.env, m.body)
		// Every golden file decodes with its decoder.
		var derr error
		switch m.env.Type {
		case TypeStatus:
			_, _, derr = DecodeStatus(want)
		case TypeTelemetry:
			_, _, derr = DecodeTelemetry(want)
		case TypeEvent:
			_, _, derr = DecodeEvent(want)
		case TypeDecision:
			_, _, derr = DecodeDecision(want)
		case TypeSample:
			_, _, derr = DecodeSample(want)
		case TypeCommand:
			_, _, derr = DecodeCommand(want)
		case TypeConfig:
			_, _, derr = DecodeConfig(want)
		case TypeAck:
			_, _, derr = DecodeAck(want)
		}
		if derr != nil {
			t.Errorf("%s: decode golden: %v", m.name, derr)
		}
	}
}

// TestOlderAck: an ack from a collector before Accept decodes, with none.
func TestOlderAck(t *testing.T) {
	_, a, err := DecodeAck([]byte(`{"v":1,"type":"ack","time":"2025-03-04T05:06:07Z","body":{"ids":["label-x-l1"]}}`))
	if err != nil || len(a.IDs) != 1 || a.Accept != nil {
		t.Fatalf("%+v %v", a, err)
	}
}

func TestSampleRoundTrip(t *testing.T) {
	s := sample()
	b, err := Encode(Envelope{Type: TypeSample, ID: "label-" + s.LabelID, Device: "d1", Time: t0, Ack: true}, s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"data":"/9j/4GZha2UganBlZ//Z"`)) {
		t.Errorf("image should travel as base64: %s", b)
	}
	e, got, err := DecodeSample(b)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "label-"+s.LabelID || !e.Ack || !bytes.Equal(got.Image.Data, s.Image.Data) || got.Class != "scratch" || got.Inspection.Scores[1].P != 0.4 {
		t.Errorf("round trip: %+v %+v", e, got)
	}
}

func TestDecodeErrors(t *testing.T) {
	enc := func(e Envelope, body any) []byte {
		b, err := Encode(e, body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bad := sample()
	bad.Image.Data = append([]byte(nil), bad.Image.Data...)
	bad.Image.Data[3] ^= 1
	traversal := sample()
	traversal.Class = "../etc"
	big := sample()
	big.Image = NewImage(make([]byte, MaxImage+1))
	tests := []struct {
		name string
		data []byte
		dec  func([]byte) error
		want error
	}{
		{"not json", []byte("{"), decSample, ErrMalformed},
		{"no version", []byte(`{"type":"sample","body":{}}`), decSample, ErrMalformed},
		{"newer version", []byte(`{"v":2,"type":"sample","id":"x","body":{}}`), decSample, ErrVersion},
		{"wrong type", enc(Envelope{Type: TypeAck}, Ack{}), decSample, ErrMalformed},
		{"no body", []byte(`{"v":1,"type":"ack"}`), decAck, ErrMalformed},
		{"bad id", []byte(`{"v":1,"type":"ack","id":"../x","body":{}}`), decAck, ErrMalformed},
		{"bad device", []byte(`{"v":1,"type":"ack","device":"a/b","body":{}}`), decAck, ErrMalformed},
		{"checksum", enc(Envelope{Type: TypeSample, ID: "label-1"}, bad), decSample, ErrChecksum},
		{"class path", enc(Envelope{Type: TypeSample, ID: "label-1"}, traversal), decSample, ErrMalformed},
		{"sample without id", enc(Envelope{Type: TypeSample}, sample()), decSample, ErrMalformed},
		{"image too large", rawSample(t, big), decSample, ErrTooLarge},
		{"too large", append([]byte(`{"v":1,"type":"ack","body":{"ids":["`), bytes.Repeat([]byte("a"), MaxMessage)...), decAck, ErrTooLarge},
		{"status state", []byte(`{"v":1,"type":"status","body":{"state":"sleepy"}}`), decStatus, ErrMalformed},
		{"command op", []byte(`{"v":1,"type":"command","body":{"op":"explode"}}`), decCommand, ErrMalformed},
		{"command camera", []byte(`{"v":1,"type":"command","body":{"op":"trigger","camera":"#"}}`), decCommand, ErrMalformed},
		{"command level", []byte(`{"v":1,"type":"command","body":{"op":"set-level","camera":"c"}}`), decCommand, ErrMalformed},
	}
	for _, tt := range tests {
		if err := tt.dec(tt.data); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := Encode(Envelope{Type: TypeEvent}, Event{Message: strings.Repeat("x", MaxMessage)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Encode over the limit: %v", err)
	}
}

func rawSample(t *testing.T, s Sample) []byte {
	body, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(Envelope{V: 1, Type: TypeSample, ID: "label-1", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decSample(b []byte) error  { _, _, err := DecodeSample(b); return err }
func decAck(b []byte) error     { _, _, err := DecodeAck(b); return err }
func decStatus(b []byte) error  { _, _, err := DecodeStatus(b); return err }
func decCommand(b []byte) error { _, _, err := DecodeCommand(b); return err }

// golden encodes body in env and compares it with testdata/NAME.json
// (rewritten with -update); it returns the golden bytes.
func golden(t *testing.T, name string, env Envelope, body any) []byte {
	t.Helper()
	b, err := Encode(env, body)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v (run go test -update)", name, err)
	}
	if !bytes.Equal(append(b, '\n'), want) {
		t.Errorf("%s: encoding changed:\n got %s\nwant %s", name, b, want)
	}
	return want
}
