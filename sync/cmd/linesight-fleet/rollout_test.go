package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/internal/cli"
	"github.com/linesight/linesight/sync/broker"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

func TestKeysGen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	code, out, errs := run(t, context.Background(), "keys", "gen", "--out", dir)
	if code != 0 || !strings.Contains(out, "ed25519:") {
		t.Fatalf("keys gen = %d %q %q", code, out, errs)
	}
	st, err := os.Stat(filepath.Join(dir, rollout.PrivateKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", st.Mode(), err)
	}
	if code, _, errs := run(t, context.Background(), "keys", "gen", "--out", dir); code != cli.ExitUsage || !strings.Contains(errs, "exists") {
		t.Fatalf("second keys gen = %d %q; want a refusal", code, errs)
	}
}

// device is a pure-Go stand-in for agent/lifecycle: it verifies the offer,
// asks for every chunk, assembles the package and reports shadow.
type device struct {
	t      *testing.T
	keys   *rollout.Keyring
	dir    string
	link   *rollout.Link
	rel    *rollout.Release
	asm    *rollout.Assembler
	chunks chan wire.ModelChunk
	offers chan wire.ModelOffer
}

func (d *device) HandleOffer(o wire.ModelOffer) { d.offers <- o }
func (d *device) HandleChunk(c wire.ModelChunk) { d.chunks <- c }

func (d *device) run(ctx context.Context) {
	select {
	case o := <-d.offers:
		rel, err := rollout.Verify(&o, d.keys)
		if err != nil {
			d.link.ReportState(wire.ModelState{State: wire.ModelRejected, Error: err.Error()})
			return
		}
		d.rel = rel
		if d.asm, err = rollout.NewAssembler(filepath.Join(d.dir, "chunks"), rel); err != nil {
			d.t.Error(err)
			return
		}
		d.link.RequestChunks(rel.Offer, d.asm.Missing(0))
	case <-ctx.Done():
		return
	}
	for !d.asm.Done() {
		select {
		case c := <-d.chunks:
			d.asm.Put(c.Index, c.Data)
		case <-ctx.Done():
			return
		}
	}
	if err := d.asm.Assemble(filepath.Join(d.dir, "pkg")); err != nil {
		d.t.Error(err)
		return
	}
	d.link.ReportState(wire.ModelState{State: wire.ModelShadow, Offer: d.rel.Offer, Model: wire.ModelRef{Name: d.rel.Name, Version: d.rel.Version}})
}

func TestPushToDevice(t *testing.T) {
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keys := filepath.Join(t.TempDir(), "keys")
	if code, _, errs := run(t, context.Background(), "keys", "gen", "--out", keys); code != 0 {
		t.Fatal(errs)
	}
	kr, err := rollout.LoadKeyring(filepath.Join(keys, rollout.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("d1").SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	d := &device{t: t, keys: kr, dir: t.TempDir(), chunks: make(chan wire.ModelChunk, 100), offers: make(chan wire.ModelOffer, 4)}
	if d.link, err = rollout.AttachDevice(c, rollout.LinkOptions{Site: "plant1", Device: "d1"}, d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go d.run(ctx)

	model := "../../../agent/builtin/model/int8"
	code, out, errs := run(t, ctx, "push", "--model", model, "--to", "d1", "--site", "plant1", "--stage", "shadow",
		"--key", filepath.Join(keys, rollout.PrivateKeyFile), "--broker", b.URL(), "--chunk-size", "4096", "--wait", "50s",
		"--store", t.TempDir())
	if code != 0 || !strings.Contains(out, "d1: shadow") {
		t.Fatalf("push = %d\n%s\n%s", code, out, errs)
	}
	want, _ := os.ReadFile(filepath.Join(model, "model.onnx"))
	got, _ := os.ReadFile(filepath.Join(d.dir, "pkg", "model.onnx"))
	if len(want) == 0 || string(got) != string(want) {
		t.Fatal("the device's assembled model differs from the pushed one")
	}
	// Bad flags are usage errors.
	if code, _, _ := run(t, ctx, "push", "--model", model, "--to", "d1", "--stage", "yolo"); code != cli.ExitUsage {
		t.Errorf("bad stage = %d", code)
	}
	if code, _, _ := run(t, ctx, "push", "--model", model, "--to", "d1", "--key", "/nonexistent"); code != cli.ExitUsage {
		t.Errorf("missing key = %d", code)
	}
}

// TestServeHostsPushedReleases: push stores the release and exits before
// any device asks; serve answers the device's chunk requests from the
// store.
func TestServeHostsPushedReleases(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	data := t.TempDir()
	releases := filepath.Join(data, "releases")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan int, 1)
	go func() {
		code, _, _ := run(t, serveCtx, "serve", "-listen", "127.0.0.1:0", "-broker-listen", addr, "-dataset", filepath.Join(data, "dataset"))
		served <- code
	}()
	defer func() { stopServe(); <-served }()
	url := "tcp://" + addr
	var c paho.Client
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("d1").SetOrderMatters(false))
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve's broker never came up")
		}
	}
	defer c.Disconnect(100)

	keys := filepath.Join(t.TempDir(), "keys")
	if code, _, errs := run(t, ctx, "keys", "gen", "--out", keys); code != 0 {
		t.Fatal(errs)
	}
	model := "../../../agent/builtin/model/int8"
	code, out, errs := run(t, ctx, "push", "--model", model, "--to", "group:line-a", "--site", "plant1", "--stage", "shadow",
		"--key", filepath.Join(keys, rollout.PrivateKeyFile), "--broker", url, "--chunk-size", "4096", "--wait", "1ms", "--store", releases)
	if code != 0 {
		t.Fatalf("push = %d\n%s\n%s", code, out, errs)
	}
	// push has exited; the device connects now and gets the retained offer.
	kr, err := rollout.LoadKeyring(filepath.Join(keys, rollout.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	d := &device{t: t, keys: kr, dir: t.TempDir(), chunks: make(chan wire.ModelChunk, 100), offers: make(chan wire.ModelOffer, 4)}
	if d.link, err = rollout.AttachDevice(c, rollout.LinkOptions{Site: "plant1", Device: "d1", Groups: []string{"line-a"}}, d); err != nil {
		t.Fatal(err)
	}
	d.run(ctx)
	want, _ := os.ReadFile(filepath.Join(model, "model.onnx"))
	got, _ := os.ReadFile(filepath.Join(d.dir, "pkg", "model.onnx"))
	if len(want) == 0 || string(got) != string(want) {
		t.Fatal("the device's model, served by serve from the release store, differs from the pushed one")
	}
}
