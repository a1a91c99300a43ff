package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/linesight/linesight/sync/internal/pahostore"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/sync/wire"
)

// CollectorOptions configure a Collector.
type CollectorOptions struct {
	// Broker is tcp://host:1883 or ssl://host:8883.
	Broker   string
	ClientID string // default linesight-fleet
	Username string
	Password string
	// TLS PEM files: the broker's CA, the collector's certificate and key.
	CA, Cert, Key string
	// SharedGroup subscribes samples, events and decisions through
	// $share/<group>/... so that collectors sharing it split the load.
	SharedGroup string
	// DatasetDir receives the samples (required).
	DatasetDir string
	// BatchMax caps the samples written with one manifest fsync (default 256).
	BatchMax int
	// RetrainAfter, when > 0, runs RetrainCommand (sh -c, in DatasetDir's
	// parent) after that many new labels; one run at a time.
	RetrainAfter   int
	RetrainCommand string
	// ConnectTimeout bounds Open's wait for the first connection (default 10s).
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Device is one device in the registry.
type Device struct {
	Site     string               `json:"site"`
	ID       string               `json:"id"`
	State    string               `json:"state"` // online, offline
	Since    time.Time            `json:"since,omitzero"`
	LastSeen time.Time            `json:"last_seen"`
	Agent    string               `json:"agent,omitempty"`
	Model    wire.ModelRef        `json:"model,omitzero"`
	Cameras  []wire.CameraSummary `json:"cameras,omitempty"`
	Health   string               `json:"health,omitempty"`
	Metrics  []wire.CameraMetrics `json:"metrics,omitempty"`
	Disk     wire.Disk            `json:"disk"`
	Outbox   uint64               `json:"outbox"`
	Counts   map[string]uint64    `json:"counts"` // messages received by type
}

// CollectorStats are the collector's counters since Open.
type CollectorStats struct {
	Connected  bool   `json:"connected"`
	Received   uint64 `json:"received"`
	Samples    uint64 `json:"samples"`    // new samples written
	Duplicates uint64 `json:"duplicates"` // samples already in the dataset
	Rejected   uint64 `json:"rejected"`
	Invalid    uint64 `json:"invalid"` // undecodable messages
	Acks       uint64 `json:"acks"`    // ack messages published
	Retrains   uint64 `json:"retrains"`
	Dataset    int    `json:"dataset"` // samples in the manifest
}

// Collector subscribes to every device, keeps the registry, writes samples
// into the dataset and acknowledges what it has made durable.
type Collector struct {
	o   CollectorOptions
	log *slog.Logger
	cli paho.Client
	ds  *Dataset

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	in     chan struct{}
	// writes carries decoded samples from the worker to the writer, which
	// makes them durable and acknowledges them while the worker decodes
	// the next messages.
	writes chan sampleBatch

	mu      sync.Mutex
	queue   []paho.Message
	devices map[string]*Device

	received, samples, dups, rejected, invalid, acks, retrains atomic.Uint64
	sinceRetrain                                               atomic.Int64
	retraining                                                 atomic.Bool
}

// OpenCollector opens the dataset, connects, subscribes and starts the
// worker. It waits up to ConnectTimeout for the first connection.
func OpenCollector(ctx context.Context, o CollectorOptions) (*Collector, error) {
	if o.DatasetDir == "" || o.Broker == "" {
		return nil, errors.New("collector: broker and dataset dir are required")
	}
	if o.ClientID == "" {
		o.ClientID = "linesight-fleet"
	}
	if o.BatchMax <= 0 {
		o.BatchMax = 256
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ds, err := OpenDataset(o.DatasetDir)
	if err != nil {
		return nil, err
	}
	c := &Collector{o: o, log: o.Logger.With("component", "collector"), ds: ds, in: make(chan struct{}, 1),
		writes: make(chan sampleBatch, 2), devices: map[string]*Device{}}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	po := paho.NewClientOptions().AddBroker(o.Broker).SetClientID(o.ClientID).
		SetCleanSession(false).SetStore(pahostore.Copy()).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(o.ConnectTimeout).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.log.Warn("mqtt link lost; reconnecting", "err", err) })
	if o.Username != "" {
		po.SetUsername(o.Username).SetPassword(o.Password)
	}
	if o.CA != "" || o.Cert != "" {
		tc, err := loadTLS(o.CA, o.Cert, o.Key)
		if err != nil {
			ds.Close()
			return nil, err
		}
		po.SetTLSConfig(tc)
	}
	c.cli = paho.NewClient(po)
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.work() }()
	go func() { defer c.wg.Done(); c.write() }()
	tok := c.cli.Connect()
	if !tok.WaitTimeout(o.ConnectTimeout) || tok.Error() != nil || !c.cli.IsConnectionOpen() {
		c.Close()
		return nil, fmt.Errorf("collector: connect to %s: %v", o.Broker, orTimeout(tok.Error()))
	}
	return c, nil
}

func orTimeout(err error) error {
	if err == nil {
		return errors.New("timed out")
	}
	return err
}

func loadTLS(ca, cert, key string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no certificate found", ca)
		}
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

func (c *Collector) onConnect(cl paho.Client) {
	c.log.Info("collector connected", "broker", c.o.Broker, "shared_group", c.o.SharedGroup)
	shared, all := wire.UpFilters(c.o.SharedGroup)
	subs := map[string]byte{}
	for _, f := range append(shared, all...) {
		subs[f] = 1
	}
	cl.SubscribeMultiple(subs, c.enqueue)
}

// enqueue is paho's callback: it only queues.
func (c *Collector) enqueue(_ paho.Client, m paho.Message) {
	c.mu.Lock()
	c.queue = append(c.queue, m)
	c.mu.Unlock()
	select {
	case c.in <- struct{}{}:
	default:
	}
}

// Close stops the worker, disconnects and closes the dataset.
func (c *Collector) Close() error {
	c.cancel()
	c.wg.Wait()
	c.cli.Disconnect(250)
	return c.ds.Close()
}

// MQTT is the collector's connected client, for other fleet parts that
// share its connection (linesight-fleet serve's rollout publisher).
func (c *Collector) MQTT() paho.Client { return c.cli }

// Dataset is the collector's dataset.
func (c *Collector) Dataset() *Dataset { return c.ds }

// Stats returns the counters.
func (c *Collector) Stats() CollectorStats {
	return CollectorStats{
		Connected: c.cli.IsConnectionOpen(), Received: c.received.Load(), Samples: c.samples.Load(),
		Duplicates: c.dups.Load(), Rejected: c.rejected.Load(), Invalid: c.invalid.Load(),
		Acks: c.acks.Load(), Retrains: c.retrains.Load(), Dataset: c.ds.Len(),
	}
}

// Devices is a snapshot of the registry, sorted by site and ID.
func (c *Collector) Devices() []Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Device, 0, len(c.devices))
	for _, d := range c.devices {
		cp := *d
		cp.Counts = make(map[string]uint64, len(d.Counts))
		for k, v := range d.Counts {
			cp.Counts[k] = v
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (c *Collector) work() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.in:
		}
		for {
			c.mu.Lock()
			n := min(len(c.queue), c.o.BatchMax)
			batch := c.queue[:n:n]
			c.queue = c.queue[n:]
			c.mu.Unlock()
			if n == 0 {
				break
			}
			c.process(batch)
		}
	}
}

type ackKey struct{ site, device string }

// process handles one batch: registry updates and acks for what needs no
// dataset; samples go to the writer (see write), which acks them once
// they are durable.
func (c *Collector) process(batch []paho.Message) {
	now := time.Now()
	acks := map[ackKey]*wire.Ack{}
	ack := func(a wire.Address, id string, rej error) {
		k := ackKey{a.Site, a.Device}
		if acks[k] == nil {
			acks[k] = &wire.Ack{}
		}
		if rej != nil {
			acks[k].Rejected = append(acks[k].Rejected, wire.Rejected{ID: id, Error: rej.Error()})
			return
		}
		acks[k].IDs = append(acks[k].IDs, id)
	}
	var samples []Incoming
	var sampleAddr []wire.Address
	for _, m := range batch {
		c.received.Add(1)
		a, err := wire.ParseTopic(m.Topic())
		if err != nil || !a.Kind.Up() {
			c.invalid.Add(1)
			continue
		}
		data := m.Payload()
		switch a.Kind {
		case wire.KindSamples:
			e, s, err := wire.DecodeSample(data)
			switch {
			case errors.Is(err, wire.ErrChecksum) || errors.Is(err, wire.ErrVersion):
				// damaged in transit or a newer device: no ack, it will come again
				c.log.Warn("sample not accepted", "device", a.Device, "id", e.ID, "err", err)
				c.invalid.Add(1)
			case err != nil && e.ID != "":
				c.log.Error("sample refused", "device", a.Device, "id", e.ID, "err", err)
				c.rejected.Add(1)
				ack(a, e.ID, err)
			case err != nil:
				c.invalid.Add(1)
			default:
				samples = append(samples, Incoming{ID: e.ID, Site: a.Site, Device: a.Device, Sample: s})
				sampleAddr = append(sampleAddr, a)
			}
			c.seen(a, now, wire.TypeSample, nil)
		case wire.KindStatus:
			_, st, err := wire.DecodeStatus(data)
			if err != nil {
				c.invalid.Add(1)
				continue
			}
			c.seen(a, now, wire.TypeStatus, func(d *Device) {
				if d.State != st.State {
					d.Since = now
				}
				d.State = st.State
				if st.State == wire.StateOnline {
					d.Agent, d.Model, d.Cameras = st.Agent, st.Model, st.Cameras
				}
			})
		case wire.KindTelemetry:
			e, t, err := wire.DecodeTelemetry(data)
			if err != nil {
				c.invalid.Add(1)
				continue
			}
			c.seen(a, now, wire.TypeTelemetry, func(d *Device) {
				d.Health, d.Metrics, d.Disk, d.Outbox = t.Health, t.Cameras, t.Disk, t.Outbox
				if t.Model.Version != "" {
					d.Model = t.Model
				}
				for _, m := range t.Cameras {
					for i := range d.Cameras {
						if d.Cameras[i].ID == m.ID && m.Level != "" {
							d.Cameras[i].Level = m.Level
						}
					}
				}
			})
			if e.Ack && e.ID != "" {
				ack(a, e.ID, nil)
			}
		default: // events, decisions, model/state: registry only
			e, err := wire.Decode(data, "")
			if err != nil {
				c.invalid.Add(1)
				continue
			}
			c.seen(a, now, e.Type, nil)
			if e.Ack && e.ID != "" {
				ack(a, e.ID, nil)
			}
		}
	}
	c.publishAcks(acks, now)
	if len(samples) > 0 {
		select {
		case c.writes <- sampleBatch{samples: samples, addr: sampleAddr, at: now}:
		case <-c.ctx.Done(): // not acknowledged: the devices send them again
		}
	}
}

// sampleBatch is decoded samples on their way to the dataset.
type sampleBatch struct {
	samples []Incoming
	addr    []wire.Address
	at      time.Time
}

// write is the writer goroutine: it takes every batch the worker has
// decoded so far, writes them with one sync (Dataset.Write) and then
// acknowledges them, so that the disk's sync time is shared by everything
// that arrived meanwhile and decoding goes on during it.
func (c *Collector) write() {
	for {
		var b sampleBatch
		select {
		case <-c.ctx.Done():
			return
		case b = <-c.writes:
		}
	more:
		for len(b.samples) < 4*c.o.BatchMax {
			select {
			case nb := <-c.writes:
				b.samples, b.addr = append(b.samples, nb.samples...), append(b.addr, nb.addr...)
			default:
				break more
			}
		}
		n, err := c.ds.Write(b.samples, b.at)
		if err != nil {
			// nothing acknowledged: the devices send them again
			c.log.Error("dataset write failed; samples will be redelivered", "n", len(b.samples), "err", err)
			continue
		}
		c.samples.Add(uint64(n))
		c.dups.Add(uint64(len(b.samples) - n))
		acks := map[ackKey]*wire.Ack{}
		for i, s := range b.samples {
			k := ackKey{b.addr[i].Site, b.addr[i].Device}
			if acks[k] == nil {
				acks[k] = &wire.Ack{}
			}
			acks[k].IDs = append(acks[k].IDs, s.ID)
		}
		c.publishAcks(acks, time.Now())
		c.maybeRetrain(n)
	}
}

// publishAcks sends one ack message per device (QoS 1, not waiting); each
// says that this collector takes sample frames.
func (c *Collector) publishAcks(acks map[ackKey]*wire.Ack, now time.Time) {
	for k, a := range acks {
		a.Accept = []string{wire.AcceptSampleFrame}
		b, err := wire.Encode(wire.Envelope{Type: wire.TypeAck, Time: now.UTC()}, a)
		if err != nil {
			c.log.Error("encode ack", "err", err)
			continue
		}
		c.cli.Publish(wire.Topic(k.site, k.device, wire.KindAck), 1, false, b)
		c.acks.Add(1)
	}
}

// seen updates a device's registry entry.
func (c *Collector) seen(a wire.Address, now time.Time, typ string, fn func(*Device)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := a.Site + "/" + a.Device
	d := c.devices[key]
	if d == nil {
		d = &Device{Site: a.Site, ID: a.Device, State: wire.StateOnline, Since: now, Counts: map[string]uint64{}}
		c.devices[key] = d
	}
	d.LastSeen = now
	d.Counts[typ]++
	if fn != nil {
		fn(d)
	}
}

func (c *Collector) maybeRetrain(n int) {
	if c.o.RetrainAfter <= 0 || n == 0 {
		return
	}
	if c.sinceRetrain.Add(int64(n)) < int64(c.o.RetrainAfter) || c.retraining.Swap(true) {
		return
	}
	c.sinceRetrain.Store(0)
	c.retrains.Add(1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.retraining.Store(false)
		c.log.Info("retraining", "command", c.o.RetrainCommand)
		cmd := exec.CommandContext(c.ctx, "sh", "-c", c.o.RetrainCommand)
		cmd.Env = append(os.Environ(), "LINESIGHT_DATASET="+c.ds.Dir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			c.log.Error("retraining failed", "err", err, "output", tail(out, 2000))
			return
		}
		c.log.Info("retraining done", "output", tail(out, 500))
	}()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
