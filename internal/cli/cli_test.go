package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitFailure},
		{Usagef("bad flag %q", "-x"), ExitUsage},
		{fmt.Errorf("load: %w", Usagef("bad")), ExitUsage},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestNewLoggerFormats(t *testing.T) {
	var buf bytes.Buffer
	// A bytes.Buffer is not a terminal, so "auto" means JSON.
	log, err := NewLogger(&buf, LogOptions{Format: "auto", Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "camera", "cam1")
	log.Debug("hidden")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("auto format on a non-terminal should be one JSON line, got %q: %v", buf.String(), err)
	}
	if rec["msg"] != "hello" || rec["camera"] != "cam1" {
		t.Errorf("unexpected record %v", rec)
	}

	buf.Reset()
	log, err = NewLogger(&buf, LogOptions{Format: "text", Level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("shown")
	if !strings.Contains(buf.String(), "level=DEBUG msg=shown") {
		t.Errorf("text debug line missing: %q", buf.String())
	}
}

func TestNewLoggerRejectsBadValues(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, LogOptions{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "auto, text, json") {
		t.Errorf("bad format error should list allowed values, got %v", err)
	}
	if _, err := NewLogger(&bytes.Buffer{}, LogOptions{Level: "loud"}); err == nil || !strings.Contains(err.Error(), "debug, info, warn, error") {
		t.Errorf("bad level error should list allowed values, got %v", err)
	}
	if l, _ := ParseLevel("warning"); l != slog.LevelWarn {
		t.Errorf("warning should parse as warn")
	}
}
