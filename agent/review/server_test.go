package review

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerEndpoints(t *testing.T) {
	s, err := Open(Options{Listen: "127.0.0.1:0", Status: func() Status {
		return Status{Device: "d1", Site: "s1", OpenAccess: true, Cameras: []CameraStatus{{ID: "cam1", Source: "synthetic", Automation: "partial"}}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before SetReady = %d, want 503", code)
	}
	s.SetReady(true)
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz after SetReady = %d, want 200", code)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("healthz = %d %q", code, body)
	}
	code, body := get(t, base+"/")
	if code != 200 || !strings.Contains(body, "cam1") || !strings.Contains(body, "Open access") {
		t.Errorf("status page = %d, missing camera or open-access warning:\n%s", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics = %d, no go_goroutines", code)
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Errorf("unknown path = %d, want 404", code)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestOpenPortInUse(t *testing.T) {
	s, err := Open(Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if _, err := Open(Options{Listen: s.Addr()}); err == nil || !strings.Contains(err.Error(), "review.listen") {
		t.Errorf("a busy port should say which setting to change, got %v", err)
	}
}
