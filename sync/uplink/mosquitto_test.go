package uplink_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/sync/fleet"
	"github.com/linesight/linesight/sync/uplink"
	"github.com/linesight/linesight/sync/wire"
)

const mosquittoBin = "/usr/sbin/mosquitto"

// mosquitto is a real broker process with TLS client certificates and the
// per-device ACL of configs/mosquitto/acl.
type mosquitto struct {
	url, certs string
	cmd        *exec.Cmd
	log        *syncBuffer
}

// syncBuffer is the broker's output, written by exec's copier.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startMosquitto(t *testing.T, clients ...string) *mosquitto {
	t.Helper()
	if _, err := os.Stat(mosquittoBin); err != nil {
		t.Skip("mosquitto is not installed (apt-get install mosquitto)")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (needed by scripts/gen-certs.sh)")
	}
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if out, err := exec.Command("bash", append([]string{"../../scripts/gen-certs.sh", certs}, clients...)...).CombinedOutput(); err != nil {
		t.Fatalf("gen-certs: %v\n%s", err, out)
	}
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	acl, err := filepath.Abs("../../configs/mosquitto/acl")
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`per_listener_settings false
allow_anonymous false
persistence false
max_packet_size 8650752
max_queued_messages 100000
listener %s 127.0.0.1
cafile %[2]s/ca.crt
certfile %[2]s/server.crt
keyfile %[2]s/server.key
require_certificate true
use_identity_as_username true
acl_file %s
`, port, certs, acl)
	if os.Geteuid() == 0 {
		conf += "user root\n" // keep privileges: the certificates are in a 0700 test directory
	}
	cf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{url: "ssl://" + addr, certs: certs, log: new(syncBuffer)}
	m.cmd = exec.Command(mosquittoBin, "-c", cf)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { m.cmd.Wait(); close(exited) }()
	t.Cleanup(func() { m.cmd.Process.Kill(); <-exited })
	waitFor(t, "mosquitto listening", func() bool {
		select {
		case <-exited:
			t.Fatalf("mosquitto exited:\n%s", m.log)
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return m
}

func (m *mosquitto) client(t *testing.T, cn string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(m.url).SetClientID(cn + "-raw").SetTLSConfig(m.tls(t, cn))
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v\n%s", cn, tok.Error(), m.log)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func (m *mosquitto) tls(t *testing.T, cn string) *tlsConfig {
	t.Helper()
	return loadClientTLS(t, m.certs, cn)
}

// TestMosquittoACL: device d2 can neither read nor write d1's topics.
func TestMosquittoACL(t *testing.T) {
	m := startMosquitto(t, "fleet-1", "d1", "d2")
	fleetC, d1, d2 := m.client(t, "fleet-1"), m.client(t, "d1"), m.client(t, "d2")

	got := make(chan string, 100)
	collect := func(who string) paho.MessageHandler {
		return func(_ paho.Client, msg paho.Message) { got <- who + " " + msg.Topic() + " " + string(msg.Payload()) }
	}
	fleetC.Subscribe("linesight/v1/#", 1, collect("fleet")).Wait()
	// d2 tries to read d1's down-link and up-link topics.
	for _, f := range []string{"linesight/v1/s1/d1/ack", "linesight/v1/s1/d1/cmd", "linesight/v1/s1/d1/samples", "linesight/v1/#"} {
		d2.Subscribe(f, 1, collect("d2")).Wait()
	}
	d1.Subscribe("linesight/v1/s1/d1/ack", 1, collect("d1")).Wait()
	d1.Subscribe("linesight/v1/s1/groups/line-a/model/offer", 1, collect("d1")).Wait()

	d2.Publish("linesight/v1/s1/d1/samples", 1, false, "forged by d2").Wait() // must not arrive
	d2.Publish("linesight/v1/s1/d1/status", 1, true, "forged by d2").Wait()   // must not arrive
	d1.Publish("linesight/v1/s1/d1/samples", 1, false, "from d1").Wait()
	fleetC.Publish("linesight/v1/s1/d1/ack", 1, false, "ack for d1").Wait()
	d2.Publish("linesight/v1/s1/d2/samples", 1, false, "from d2").Wait()
	// Model rollout: a device asks for chunks on its own request topic and
	// reads its groups' offers; it may not forge an offer or ask as another.
	d1.Publish("linesight/v1/s1/d1/model/request", 1, false, "request from d1").Wait()
	d2.Publish("linesight/v1/s1/d1/model/request", 1, false, "forged by d2").Wait()          // must not arrive
	d2.Publish("linesight/v1/s1/groups/line-a/model/offer", 1, false, "forged by d2").Wait() // must not arrive
	fleetC.Publish("linesight/v1/s1/groups/line-a/model/offer", 1, false, "offer").Wait()

	want := map[string]bool{
		"fleet linesight/v1/s1/d1/samples from d1":               true,
		"fleet linesight/v1/s1/d1/ack ack for d1":                true,
		"d1 linesight/v1/s1/d1/ack ack for d1":                   true,
		"fleet linesight/v1/s1/d2/samples from d2":               true,
		"fleet linesight/v1/s1/d1/model/request request from d1": true,
		"fleet linesight/v1/s1/groups/line-a/model/offer offer":  true,
		"d1 linesight/v1/s1/groups/line-a/model/offer offer":     true,
		"d2 linesight/v1/s1/groups/line-a/model/offer offer":     true, // group offers are readable by every device
	}
	deadline := time.After(3 * time.Second)
	seen := map[string]bool{}
	for {
		select {
		case s := <-got:
			if !want[s] {
				t.Errorf("ACL let through: %s", s)
			}
			seen[s] = true
			continue
		case <-deadline:
		}
		break
	}
	for s := range want {
		if !seen[s] {
			t.Errorf("allowed message missing: %s", s)
		}
	}
}

// TestMosquittoSharedCollectors drains a device over TLS into two
// collectors sharing the load through $share/fleet/... and one dataset
// directory: every sample exactly once, both collectors took part.
func TestMosquittoSharedCollectors(t *testing.T) {
	m := startMosquitto(t, "fleet-1", "fleet-2", "d1")
	st := openStore(t, filepath.Join(t.TempDir(), "agent.db"))
	defer st.Close()
	dir := t.TempDir()
	imgs, cls := seed(t, st, 300, 3000, rand.New(rand.NewSource(4)))
	var cols []*fleet.Collector
	for _, id := range []string{"fleet-1", "fleet-2"} {
		c, err := fleet.OpenCollector(context.Background(), fleet.CollectorOptions{
			Broker: m.url, ClientID: id, DatasetDir: dir, SharedGroup: "fleet", BatchMax: 16,
			CA: filepath.Join(m.certs, "ca.crt"), Cert: filepath.Join(m.certs, id+".crt"), Key: filepath.Join(m.certs, id+".key"),
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, m.log)
		}
		defer c.Close()
		cols = append(cols, c)
	}
	u := openUplink(t, m.url, st, func(o *uplink.Options) {
		o.TLS = uplink.TLSFiles{CA: filepath.Join(m.certs, "ca.crt"), Cert: filepath.Join(m.certs, "d1.crt"), Key: filepath.Join(m.certs, "d1.key")}
		o.ClientID = "d1"
		o.DrainRate = 2000
	})
	defer u.Close()
	waitFor(t, "outbox drained through mosquitto", func() bool { return outboxLen(t, st) == 0 })
	checkDataset(t, dir, imgs, cls, 300)
	a, b := cols[0].Stats(), cols[1].Stats()
	if a.Samples+b.Samples != 300 || a.Samples == 0 || b.Samples == 0 {
		t.Errorf("shared subscription should split the samples: %d + %d (dups %d, %d)\n%s", a.Samples, b.Samples, a.Duplicates, b.Duplicates, m.log)
	}
	// Status is not shared: both registries know d1 is online.
	for _, c := range cols {
		waitFor(t, "registry", func() bool { d := c.Devices(); return len(d) == 1 && d[0].State == wire.StateOnline })
	}
	if strings.Contains(m.log.String(), "Denied") {
		t.Logf("mosquitto log:\n%s", m.log)
	}
}
