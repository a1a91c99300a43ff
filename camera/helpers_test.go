package camera

import (
	"bytes"
	"context"
	"fmt"
	"image"
	colorpkg "image/color"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// noLeakedMats fails the test if Mats are still open when it ends. It
// checks for real under -tags matprofile (gocv.MatProfile counts only then).
func noLeakedMats(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		if n, stacks := openMats(); n != 0 {
			t.Errorf("%d gocv.Mat(s) leaked:\n%s", n, stacks)
		}
	})
}

// testJPEG encodes a w x h BGR image whose colour depends on i.
func testJPEG(t testing.TB, w, h, i int) []byte {
	t.Helper()
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(20*i%255), 80, 160, 0), h, w, gocv.MatTypeCV8UC3)
	defer m.Close()
	gocv.Rectangle(&m, image.Rect(w/4, h/4, w/2, h/2), colorRGBA(i), -1)
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, m)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes())
}

// writeVideo writes n frames of w x h as MJPG in an .avi file.
func writeVideo(t testing.TB, path string, n, w, h int) {
	t.Helper()
	vw, err := gocv.VideoWriterFile(path, "MJPG", 25, w, h, true)
	if err != nil {
		t.Fatal(err)
	}
	defer vw.Close()
	for i := range n {
		m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(10*i%255), 100, 50, 0), h, w, gocv.MatTypeCV8UC3)
		err := vw.Write(m)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mjpegHandler streams jpg as multipart/x-mixed-replace until the client
// goes away or stop is set, one frame every interval.
func mjpegHandler(jpg []byte, interval time.Duration, stop *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mw := multipart.NewWriter(w)
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mw.Boundary())
		for stop == nil || !stop.Load() {
			h := textproto.MIMEHeader{}
			h.Set("Content-Type", "image/jpeg")
			h.Set("Content-Length", fmt.Sprint(len(jpg)))
			pw, err := mw.CreatePart(h)
			if err != nil {
				return
			}
			if _, err := pw.Write(jpg); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
		}
	})
}

// startServerAt serves h on addr ("127.0.0.1:0" for any port).
func startServerAt(t testing.TB, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after a restart
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	return srv
}

// waitFor polls cond until it holds; the timeout only guards a hang.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func colorRGBA(i int) colorpkg.RGBA { return colorpkg.RGBA{R: uint8(40 * i), G: 200, B: 30, A: 255} }

// closeServer cuts streaming connections, which never end on their own,
// then stops the server.
func closeServer(srv *httptest.Server) {
	srv.CloseClientConnections()
	srv.Close()
}
