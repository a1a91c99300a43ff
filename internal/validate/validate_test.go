package validate

import (
	"errors"
	"testing"
)

func TestCollector(t *testing.T) {
	v := New("")
	cam := v.Index("cameras", 0)
	cam.OneOf("source.kind", "usb", "device", "url", "file")
	cam.At("trigger").Add("fps", 0.0, "must be > 0")
	Range(v.At("model"), "sessions", 0, 1, 64)
	v.Required("device.id", "", "a unique name for this device")
	v.OneOf("log.format", "json", "auto", "text", "json") // allowed: no error

	want := []string{
		`cameras[0].source.kind: "usb" is not allowed; use one of: device, url, file`,
		`cameras[0].trigger.fps: 0 must be > 0`,
		`model.sessions: 0 is out of range; allowed: 1 to 64`,
		`device.id: is required: a unique name for this device`,
	}
	got := v.Errors()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Error() != want[i] {
			t.Errorf("error %d:\n got  %s\n want %s", i, got[i], want[i])
		}
	}
	var es Errors
	if !errors.As(v.Err(), &es) || len(es) != 4 {
		t.Errorf("Err() should be an Errors of 4, got %v", v.Err())
	}
	if New("x").Err() != nil {
		t.Error("an empty collector must return a nil error")
	}
}
