package lifecycle

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"gocv.io/x/gocv"

	"github.com/linesight/linesight/agent/builtin"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/sync/broker"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

var testRT struct {
	once sync.Once
	rt   *onnx.Runtime
	err  error
}

func runtime(t *testing.T) *onnx.Runtime {
	t.Helper()
	testRT.once.Do(func() { testRT.rt, testRT.err = onnx.OpenRuntime(onnx.ProcessSearch("")) })
	if testRT.err != nil {
		t.Fatalf("open runtime (run scripts/setup.sh first): %v", testRT.err)
	}
	return testRT.rt
}

func openEngine(rt *onnx.Runtime, pkg *inference.Package) (*inference.Engine, error) {
	return inference.Open(rt, pkg, inference.Config{Options: onnx.Options{Provider: onnx.ProviderCPU, IntraOpThreads: 1, Sessions: 1}})
}

// frames are JPEGs like the store keeps: gray tiles with a dark stripe.
type frames struct{ n int }

func (f frames) Recent(n int) ([][]byte, error) {
	var out [][]byte
	for i := range min(n, f.n) {
		img := image.NewGray(image.Rect(0, 0, 160, 160))
		for y := range 160 {
			for x := range 160 {
				v := uint8(120 + (x+y+i*7)%40)
				if x > 70 && x < 76+i {
					v = 30
				}
				img.SetGray(x, y, color.Gray{v})
			}
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, nil); err != nil {
			return nil, err
		}
		out = append(out, b.Bytes())
	}
	return out, nil
}

type env struct {
	t       *testing.T
	dir     string
	rt      *onnx.Runtime
	priv    ed25519.PrivateKey
	keys    *rollout.Keyring
	serving *inference.Engine // the pipeline's engine
	states  chan wire.ModelState
	lc      *Lifecycle
	opt     Options

	mu      sync.Mutex
	srcs    map[string]*rollout.Source
	corrupt map[int]int // chunk → corrupt deliveries left
	drop    bool        // requests go unanswered
	asked   int
}

func (e *env) RequestChunks(offer string, ks []int) error {
	e.mu.Lock()
	src, drop := e.srcs[offer], e.drop
	e.asked += len(ks)
	e.mu.Unlock()
	if src == nil || drop {
		return nil
	}
	go func() {
		for _, k := range ks {
			b, err := src.Chunk(k)
			if err != nil {
				return
			}
			e.mu.Lock()
			if e.corrupt[k] > 0 {
				e.corrupt[k]--
				b = append([]byte(nil), b...)
				b[len(b)/2] ^= 0x55
			}
			e.mu.Unlock()
			e.lc.HandleChunk(wire.NewModelChunk(offer, k, b))
		}
	}()
	return nil
}

func (e *env) ReportState(s wire.ModelState) error {
	select {
	case e.states <- s:
	default:
	}
	return nil
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	e := &env{t: t, dir: t.TempDir(), rt: runtime(t), priv: priv, keys: rollout.NewKeyring(pub),
		states: make(chan wire.ModelState, 1000), srcs: map[string]*rollout.Source{}, corrupt: map[int]int{}}
	bi, err := builtin.Package(builtin.FP32)
	if err != nil {
		t.Fatal(err)
	}
	e.opt = Options{Dir: e.dir, TrustedKeys: e.keys, Builtin: bi,
		Engines:   EnginesFunc(func(p *inference.Package) (*inference.Engine, error) { return openEngine(e.rt, p) }),
		Activator: ActivatorFunc(func(p *inference.Package) error { return e.serving.Swap(p) }),
		Frames:    frames{n: 4}, Requester: e, Reporter: e,
		Cameras: []CameraInput{{ID: "cam1", Width: 640, Height: 480, Channels: 3}},
		Device:  "d1", RetryAfter: 200 * time.Millisecond, MaxRetries: 3}
	if mod != nil {
		mod(&e.opt)
	}
	e.open()
	return e
}

// open (re)opens the lifecycle and the serving engine on its Active().
func (e *env) open() {
	e.t.Helper()
	lc, err := Open(e.opt)
	if err != nil {
		e.t.Fatal(err)
	}
	e.lc = lc
	e.serving, err = openEngine(e.rt, lc.Active())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.close)
}

func (e *env) close() {
	if e.lc != nil {
		e.lc.Close()
		e.serving.Close()
	}
}

// pkg copies a model package, setting its version.
func pkg(t *testing.T, src fs.FS, version string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"manifest.json", "model.onnx"} {
		b, err := fs.ReadFile(src, f)
		if err != nil {
			t.Fatal(err)
		}
		if f == "manifest.json" && version != "" {
			m, err := inference.ParseManifest(b)
			if err != nil {
				t.Fatal(err)
			}
			m.Version = version
			if b, err = m.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (e *env) offer(dir string, opt rollout.ReleaseOptions) (*rollout.Release, wire.ModelOffer) {
	e.t.Helper()
	if opt.Stage == "" {
		opt.Stage = rollout.StageShadow
	}
	if opt.Criteria == (rollout.Criteria{}) {
		opt.Criteria = rollout.Criteria{MinFrames: 10, MinAgreement: 0.5, MaxLatencyRatio: 1000, MaxErrorRate: 0.1, Auto: true}
	}
	if opt.ChunkSize == 0 {
		opt.ChunkSize = 64 << 10
	}
	opt.Target = "d1"
	r, err := rollout.BuildRelease(dir, opt)
	if err != nil {
		e.t.Fatal(err)
	}
	o, err := rollout.Sign(r, e.priv)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.srcs[r.Offer] = rollout.NewSource(dir, r)
	e.mu.Unlock()
	return r, *o
}

// wait reads states until one has state want (and, for rejected, code).
func (e *env) wait(want string) wire.ModelState {
	e.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case s := <-e.states:
			if s.State == want {
				return s
			}
			if s.State == wire.ModelRejected && want != wire.ModelRejected {
				e.t.Fatalf("waiting for %s: rejected: %s", want, s.Error)
			}
		case <-timeout:
			e.t.Fatalf("no %s state; last %+v", want, e.lc.State())
		}
	}
}

// frame runs one real frame through the serving engine and the shadow
// (when there is one) and reports both.
func (e *env) frame(latency func(active bool) time.Duration) {
	e.t.Helper()
	imgs, _ := frames{n: 1}.Recent(1)
	m, err := gocv.IMDecode(imgs[0], gocv.IMReadColor)
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	run := func(eng *inference.Engine, active bool) Outcome {
		t0 := time.Now()
		r, err := eng.Run(context.Background(), inference.Frame{Image: m})
		o := Outcome{Latency: time.Since(t0), Err: err}
		if latency != nil {
			o.Latency = latency(active)
		}
		if err == nil {
			o.Label = r.TopLabel
			o.Automated = true
		}
		return o
	}
	a := run(e.serving, true)
	if sh := e.lc.Shadow(); sh != nil {
		s := run(sh, false)
		e.lc.Observe(a, &s)
	} else {
		e.lc.Observe(a, nil)
	}
}

func (e *env) servingVersion() string { return e.serving.Manifest().Version }

func TestShadowPromoteAndReopen(t *testing.T) {
	e := newEnv(t, nil)
	if v := e.lc.Active().Manifest.Version; v != "1.0.0" {
		t.Fatalf("fresh device serves %s, want the built-in 1.0.0", v)
	}
	_, off := e.offer(pkg(t, builtin.FS(), "1.1.0"), rollout.ReleaseOptions{})
	e.lc.HandleOffer(off)
	e.wait(wire.ModelShadow)
	if e.lc.Shadow() == nil || e.servingVersion() != "1.0.0" {
		t.Fatal("candidate should run in shadow while 1.0.0 serves")
	}
	for e.lc.Shadow() != nil {
		e.frame(nil)
	}
	e.wait(wire.ModelProbation)
	if e.servingVersion() != "1.1.0" {
		t.Fatalf("serving %s after promotion", e.servingVersion())
	}
	for range 12 {
		e.frame(nil)
	}
	s := e.wait(wire.ModelActive)
	if s.Active.Version != "1.1.0" || s.Previous.Version != "1.0.0" {
		t.Fatalf("state %+v", s)
	}
	e.close()
	e.lc = nil
	e.open()
	if v := e.lc.Active().Manifest.Version; v != "1.1.0" {
		t.Fatalf("after restart serves %s, want 1.1.0", v)
	}
	if _, err := os.Stat(filepath.Join(e.dir, incomingDir, off.KeyID)); err == nil {
		t.Error("incoming chunks left behind")
	}
}

func TestRejections(t *testing.T) {
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name string
		opt  func(*Options)
		make func(e *env) wire.ModelOffer
		want error
	}{
		{"unknown key", nil, func(e *env) wire.ModelOffer {
			r, _ := e.offer(pkg(t, builtin.FS(), "1.2.0"), rollout.ReleaseOptions{})
			o, _ := rollout.Sign(r, otherPriv)
			return *o
		}, ErrUnknownKey},
		{"wrong signature", nil, func(e *env) wire.ModelOffer {
			_, o := e.offer(pkg(t, builtin.FS(), "1.2.0"), rollout.ReleaseOptions{})
			o.Release = bytes.Replace(o.Release, []byte(`"stage":"shadow"`), []byte(`"stage":"all"`), 1)
			return o
		}, ErrSignature},
		{"older version", nil, func(e *env) wire.ModelOffer {
			_, o := e.offer(pkg(t, builtin.FS(), "0.9.0"), rollout.ReleaseOptions{})
			return o
		}, ErrOlderVersion},
		{"oversized", func(o *Options) { o.MaxModelBytes = 100 << 10 }, func(e *env) wire.ModelOffer {
			_, o := e.offer(pkg(t, builtin.FS(), "1.2.0"), rollout.ReleaseOptions{})
			return o
		}, ErrTooLarge},
		{"other task and labels", nil, func(e *env) wire.ModelOffer {
			_, o := e.offer(pkg(t, os.DirFS("../../inference/testdata/models/detect"), "9.0.0"), rollout.ReleaseOptions{})
			return o
		}, ErrDoesNotFit},
		{"colour model on a gray camera", func(o *Options) { o.Cameras[0].Channels = 1 }, func(e *env) wire.ModelOffer {
			_, o := e.offer(pkg(t, os.DirFS("../../inference/testdata/models/classify"), "9.0.0"), rollout.ReleaseOptions{})
			return o
		}, ErrDoesNotFit},
		{"corrupt chunk", nil, func(e *env) wire.ModelOffer {
			e.corrupt[2] = 5
			_, o := e.offer(pkg(t, builtin.FS(), "1.2.0"), rollout.ReleaseOptions{})
			return o
		}, ErrCorruptChunk},
		{"graph that does not load", nil, func(e *env) wire.ModelOffer {
			// The built-in manifest pinned to inference's corrupt test graph:
			// it fits, its checksum holds, but ONNX Runtime cannot load it.
			dir := pkg(t, builtin.FS(), "9.0.0")
			bad, err := os.ReadFile("../../inference/testdata/models/corrupt.onnx")
			if err != nil {
				t.Fatal(err)
			}
			mb, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
			m, _ := inference.ParseManifest(mb)
			m.Model.SHA256 = inference.SHA256(bad)
			mb, _ = m.Marshal()
			os.WriteFile(filepath.Join(dir, "manifest.json"), mb, 0o644)
			os.WriteFile(filepath.Join(dir, "model.onnx"), bad, 0o644)
			_, o := e.offer(dir, rollout.ReleaseOptions{})
			return o
		}, ErrUnhealthy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.opt)
			e.lc.HandleOffer(c.make(e))
			s := e.wait(wire.ModelRejected)
			if c.want != nil && s.Code != Code(c.want) {
				t.Fatalf("code %q (%s), want %q", s.Code, s.Error, Code(c.want))
			}
			t.Logf("%s: %s", s.Code, s.Error)
			if e.lc.Shadow() != nil || e.servingVersion() != "1.0.0" || s.Active.Version != "1.0.0" {
				t.Fatal("the active model must keep serving, with no candidate")
			}
			e.frame(nil) // and it still runs frames
		})
	}
}

func TestCorruptChunkRecovers(t *testing.T) {
	e := newEnv(t, nil)
	e.corrupt[1] = 1
	_, off := e.offer(pkg(t, builtin.FS(), "1.1.0"), rollout.ReleaseOptions{})
	e.lc.HandleOffer(off)
	sawCorrupt := false
	timeout := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case s := <-e.states:
			if s.Code == Code(ErrCorruptChunk) && s.State == wire.ModelDownloading {
				sawCorrupt = true
			}
			if s.State == wire.ModelRejected {
				t.Fatal(s.Error)
			}
			done = s.State == wire.ModelShadow
		case <-timeout:
			t.Fatal("no shadow")
		}
	}
	if !sawCorrupt {
		t.Error("the corrupt chunk was not reported")
	}
}

func TestRollbackOnLatencyRegression(t *testing.T) {
	e := newEnv(t, nil)
	fast := func(bool) time.Duration { return time.Millisecond }
	for range 20 {
		e.frame(fast)
	}
	_, off := e.offer(pkg(t, builtin.FS(), "1.1.0"), rollout.ReleaseOptions{Stage: rollout.StageAll,
		Criteria: rollout.Criteria{MinFrames: 10, MaxLatencyRatio: 1.5, MaxErrorRate: 0.1}})
	e.lc.HandleOffer(off)
	e.wait(wire.ModelProbation)
	if e.servingVersion() != "1.1.0" {
		t.Fatal("stage all should promote at once")
	}
	for e.lc.State().State == wire.ModelProbation {
		e.frame(func(bool) time.Duration { return 20 * time.Millisecond })
		time.Sleep(time.Millisecond)
	}
	s := e.wait(wire.ModelRolledBack)
	if s.Code != Code(ErrRegression) || e.servingVersion() != "1.0.0" || s.Active.Version != "1.0.0" {
		t.Fatalf("state %+v, serving %s", s, e.servingVersion())
	}
	// The same version offered again is refused.
	_, again := e.offer(pkg(t, builtin.FS(), "1.1.0"), rollout.ReleaseOptions{})
	e.lc.HandleOffer(again)
	if s := e.wait(wire.ModelRejected); s.Code != Code(ErrRejectedBefore) {
		t.Fatalf("re-offer: %+v", s)
	}
	// And a restart serves the version the rollback returned to.
	e.close()
	e.lc = nil
	e.open()
	if v := e.lc.Active().Manifest.Version; v != "1.0.0" {
		t.Fatalf("after restart: %s", v)
	}
}

func TestSignedRollbackAndCommands(t *testing.T) {
	e := newEnv(t, nil)
	_, off := e.offer(pkg(t, builtin.FS(), "2.0.0"), rollout.ReleaseOptions{Stage: rollout.StageAll})
	e.lc.HandleOffer(off)
	e.wait(wire.ModelProbation)
	_, older := e.offer(pkg(t, builtin.FS(), "1.5.0"), rollout.ReleaseOptions{Stage: rollout.StageAll})
	e.lc.HandleOffer(older)
	if s := e.wait(wire.ModelRejected); s.Code != Code(ErrOlderVersion) {
		t.Fatalf("%+v", s)
	}
	_, rb := e.offer(pkg(t, builtin.FS(), "1.5.0"), rollout.ReleaseOptions{Stage: rollout.StageAll, Rollback: true})
	e.lc.HandleOffer(rb)
	e.wait(wire.ModelProbation)
	if e.servingVersion() != "1.5.0" {
		t.Fatalf("signed rollback: serving %s", e.servingVersion())
	}
	// A rollback command returns to 2.0.0 (the previous), and then there is none.
	ctx := context.Background()
	if err := e.lc.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if e.servingVersion() != "2.0.0" {
		t.Fatalf("rollback command: serving %s", e.servingVersion())
	}
	if err := e.lc.Rollback(ctx); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("second rollback = %v", err)
	}
	if err := e.lc.Promote(ctx); !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("promote without candidate = %v", err)
	}
	// Manual promotion of a candidate that waits for the command.
	_, manual := e.offer(pkg(t, builtin.FS(), "3.0.0"), rollout.ReleaseOptions{Criteria: rollout.Criteria{MinFrames: 1, MaxLatencyRatio: 1000, MaxErrorRate: 1}})
	e.lc.HandleOffer(manual)
	e.wait(wire.ModelShadow)
	if err := e.lc.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if e.servingVersion() != "3.0.0" {
		t.Fatalf("promote command: serving %s", e.servingVersion())
	}
}

// TestCrashAtEachStep leaves the disk as a power cut at each step of an
// install or a switch would, and re-opens: a verified model serves.
func TestCrashAtEachStep(t *testing.T) {
	// Build a disk with 1.1.0 active and 1.0.0 (builtin) previous, then 1.2.0 installed as previous of ... via the real code.
	base := newEnv(t, nil)
	_, o1 := base.offer(pkg(t, builtin.FS(), "1.1.0"), rollout.ReleaseOptions{Stage: rollout.StageAll})
	base.lc.HandleOffer(o1)
	base.wait(wire.ModelProbation)
	_, o2 := base.offer(pkg(t, builtin.FS(), "1.2.0"), rollout.ReleaseOptions{Stage: rollout.StageAll})
	base.lc.HandleOffer(o2)
	base.wait(wire.ModelProbation)
	base.close()
	base.lc = nil
	v11, v12 := rollout.VersionID("builtin-synthetic-tiles", "1.1.0"), rollout.VersionID("builtin-synthetic-tiles", "1.2.0")

	cases := []struct {
		name  string
		crash func(t *testing.T, dir string)
		want  string
	}{
		{"clean", func(*testing.T, string) {}, "1.2.0"},
		{"half-assembled version", func(t *testing.T, dir string) {
			tmp := filepath.Join(dir, versionsDir, tmpPrefix+"x@9-abc")
			os.MkdirAll(tmp, 0o755)
			os.WriteFile(filepath.Join(tmp, "model.onnx"), []byte("half"), 0o644)
		}, "1.2.0"},
		{"installed, pointer not yet switched", func(t *testing.T, dir string) {
			writeFileAtomic(filepath.Join(dir, pointerFile), []byte(`{"active":"`+v11+`","previous":"builtin"}`))
		}, "1.1.0"},
		{"pointer temp half-written", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, pointerTemp), []byte(`{"act`), 0o644)
		}, "1.2.0"},
		{"active model truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, versionsDir, v12, "model.onnx")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}, "1.1.0"},
		{"active release tampered", func(t *testing.T, dir string) {
			p := filepath.Join(dir, versionsDir, v12, releaseFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`1.2.0`), []byte(`1.2.1`), 1), 0o644)
		}, "1.1.0"},
		{"active and previous gone", func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, versionsDir, v12))
			os.Remove(filepath.Join(dir, versionsDir, v11, "manifest.json"))
		}, "1.0.0"},
		{"pointer garbage", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, pointerFile), []byte("\x00\x00"), 0o644)
		}, "1.0.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(base.dir)); err != nil {
				t.Fatal(err)
			}
			c.crash(t, dir)
			e := &env{t: t, dir: dir, rt: base.rt, keys: base.keys, states: make(chan wire.ModelState, 100), srcs: map[string]*rollout.Source{}}
			e.opt = base.opt
			e.opt.Dir, e.opt.Requester, e.opt.Reporter = dir, e, e
			e.opt.Activator = ActivatorFunc(func(p *inference.Package) error { return e.serving.Swap(p) })
			e.open()
			if v := e.lc.Active().Manifest.Version; v != c.want {
				t.Fatalf("serves %s, want %s", v, c.want)
			}
			e.frame(nil)
			if ents, _ := os.ReadDir(filepath.Join(dir, versionsDir)); len(ents) > 0 {
				for _, en := range ents {
					if strings.HasPrefix(en.Name(), tmpPrefix) {
						t.Errorf("%s left behind", en.Name())
					}
				}
			}
		})
	}
}

func TestResumeTransfer(t *testing.T) {
	e := newEnv(t, nil)
	dir := pkg(t, builtin.FS(), "1.1.0")
	r, off := e.offer(dir, rollout.ReleaseOptions{ChunkSize: 16 << 10})
	// Deliver only the first chunks, then stop answering.
	asm, err := rollout.NewAssembler(filepath.Join(e.dir, incomingDir, r.Offer), r)
	if err != nil {
		t.Fatal(err)
	}
	src := rollout.NewSource(dir, r)
	half := len(r.Chunks) / 2
	for k := range half {
		b, _ := src.Chunk(k)
		asm.Put(k, b)
	}
	e.asked = 0
	e.lc.HandleOffer(off)
	e.wait(wire.ModelShadow)
	if e.asked != len(r.Chunks)-half {
		t.Fatalf("asked for %d chunks, want only the %d missing", e.asked, len(r.Chunks)-half)
	}
}

func TestHTTPOffer(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Requester = nil })
	dir := pkg(t, builtin.FS(), "1.1.0")
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	e.opt.HTTP = srv.Client()
	_, off := e.offer(dir, rollout.ReleaseOptions{})
	off.URL = srv.URL
	e.lc.HandleOffer(off)
	e.wait(wire.ModelShadow)
}

// TestEndToEndMQTT: push from the fleet side over the embedded broker; the
// device assembles, verifies and stages the model in shadow.
func TestEndToEndMQTT(t *testing.T) {
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	connect := func(id string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetOrderMatters(false))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c
	}
	fleet, device := connect("fleet"), connect("d1")
	pub, err := rollout.NewPublisher(fleet, rollout.PublisherOptions{Site: "plant1"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	e := newEnv(t, func(o *Options) { o.Requester = nil; o.Reporter = nil })
	e.close()
	e.lc = nil
	var link *rollout.Link
	e.opt.Requester = requesterFunc(func(offer string, ks []int) error { return link.RequestChunks(offer, ks) })
	states := make(chan wire.ModelState, 100)
	e.opt.Reporter = reporterFunc(func(s wire.ModelState) error {
		states <- s
		return link.ReportState(s)
	})
	e.open()
	link, err = rollout.AttachDevice(device, rollout.LinkOptions{Site: "plant1", Device: "d1", Groups: []string{"line-a"}}, e.lc)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()

	// The fleet sees the device's model state.
	fleetStates := make(chan wire.ModelState, 100)
	fleet.Subscribe(wire.Topic("plant1", "d1", wire.KindModelState), 1, func(_ paho.Client, m paho.Message) {
		if _, s, err := wire.DecodeModelState(m.Payload()); err == nil {
			fleetStates <- s
		}
	}).WaitTimeout(5 * time.Second)

	dir := pkg(t, builtin.FS(), "1.1.0")
	tg, _ := rollout.ParseTarget("plant1", "group:line-a")
	r, err := rollout.BuildRelease(dir, rollout.ReleaseOptions{Target: tg.String(), Stage: rollout.StageShadow, Criteria: rollout.DefaultCriteria()})
	if err != nil {
		t.Fatal(err)
	}
	off, err := rollout.Sign(r, e.priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Offer(tg, off, r, rollout.NewSource(dir, r)); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(60 * time.Second)
	for staged := false; !staged; {
		select {
		case s := <-fleetStates:
			if s.State == wire.ModelRejected {
				t.Fatal(s.Error)
			}
			staged = s.State == wire.ModelShadow && s.Model.Version == "1.1.0"
		case <-timeout:
			t.Fatalf("device did not reach shadow; last %+v", e.lc.State())
		}
	}
	if e.lc.Shadow() == nil || pub.Served(r.Offer) < len(r.Chunks) {
		t.Fatalf("shadow %v, served %d of %d", e.lc.Shadow() != nil, pub.Served(r.Offer), len(r.Chunks))
	}
	_ = states
}

type requesterFunc func(string, []int) error

func (f requesterFunc) RequestChunks(o string, ks []int) error { return f(o, ks) }

type reporterFunc func(wire.ModelState) error

func (f reporterFunc) ReportState(s wire.ModelState) error { return f(s) }
