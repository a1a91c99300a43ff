package review

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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
	code, body := get(t, base+"/status")
	if code != 200 || !strings.Contains(body, "cam1") || !strings.Contains(body, "Open access") {
		t.Errorf("status page = %d, missing camera or open-access warning:\n%s", code, body)
	}
	if code, body := get(t, base+"/"); code != 200 || !strings.Contains(body, `src="/app.js"`) || strings.Contains(body, "http") && strings.Contains(body, "cdn") {
		t.Errorf("UI page = %d:\n%s", code, body)
	}
	for _, p := range []string{"/app.js", "/app.css"} {
		if code, _ := get(t, base+p); code != 200 {
			t.Errorf("%s = %d", p, code)
		}
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

func TestOpenBadAuth(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth Auth
		want string
	}{
		{"mode", Auth{Mode: "ldap"}, "want users, header or open"},
		{"role", Auth{Users: []User{{Name: "x", Role: "boss", PasswordHash: "$2a$04$abcdefghijklmnopqrstuu"}}}, "want inspector or supervisor"},
		{"hash", Auth{Users: []User{{Name: "x", Role: RoleInspector, PasswordHash: "plaintext"}}}, "linesight user hash"},
		{"name", Auth{Users: []User{{Role: RoleInspector}}}, "empty name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(Options{Listen: "127.0.0.1:0", Auth: tc.auth})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestCloseEndsEventStreams: an open SSE stream must not hold Close up.
func TestCloseEndsEventStreams(t *testing.T) {
	s, err := Open(Options{Listen: "127.0.0.1:0", Auth: Auth{Mode: AuthOpen}, Line: newFakeLine("cam1")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close with a stream open: %v", err)
	}
}
