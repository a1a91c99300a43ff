package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/linesight/linesight/sync/internal/pahostore"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/sync/wire"
)

// Outbox is what the uplink reads from and acknowledges in the store
// (*store.Store implements it).
type Outbox interface {
	// Pending returns up to limit entries after sequence after, oldest first.
	// Called from the drain goroutine; a read transaction, never blocks long.
	Pending(after uint64, limit int) ([]store.OutboxEntry, error)
	// Ack removes entries by ID once the collector acknowledged them; it
	// returns after the commit (fsync).
	Ack(ctx context.Context, ids ...string) (int, error)
	// Samples reads the labels, labelled inspections and JPEGs of label
	// entries, one result per entry (its Err says why one cannot be sent
	// yet). Called from the drain goroutine once per batch Pending returned.
	Samples(entries []store.OutboxEntry) []store.OutboxSample
}

// Telemetry is implemented by the agent. Telemetry is called every
// Options.TelemetryEvery from the uplink's telemetry goroutine; it must
// return quickly (a snapshot of counters), and cannot fail.
type Telemetry interface {
	Telemetry() wire.Telemetry
}

// Status is implemented by the agent: called on every (re)connection for
// the retained status message. State is set by the uplink.
type Status interface {
	Status() wire.Status
}

// Commands is implemented by the agent. Its methods are called one at a
// time from the uplink's command goroutine (never from paho's), may block,
// and return an error that is logged (the fleet watches status and
// telemetry for the effect).
type Commands interface {
	// SetLevel changes a camera's degree of automation; by names who asked.
	SetLevel(ctx context.Context, camera string, level policy.Level, by string) error
	// Trigger starts an inspection of part on a triggered camera.
	Trigger(ctx context.Context, camera, part string) error
}

// Rollbacker is implemented by the model lifecycle: the rollback command.
// Called from the uplink's command goroutine; it may block; its error is
// logged.
type Rollbacker interface {
	Rollback(ctx context.Context, by string) error
}

// Promoter is implemented by the model lifecycle: the promote command (the
// candidate running in shadow becomes active, as for an offer pushed with
// manual criteria). Called from the uplink's command goroutine; it may
// block; its error (for example: no candidate in shadow) is logged.
type Promoter interface {
	Promote(ctx context.Context, by string) error
}

// Handler receives a down-link message on its own goroutine (one per
// handler, messages in arrival order); it may block.
type Handler func(ctx context.Context, topic string, payload []byte)

// TLSFiles are PEM files for a TLS link with client certificates.
type TLSFiles struct {
	CA   string // the broker's CA; empty: the system roots
	Cert string // client certificate (its CN is the device ID under the mosquitto ACL)
	Key  string
}

// Options configure an Uplink.
type Options struct {
	// Broker is tcp://host:1883 or ssl://host:8883.
	Broker   string
	ClientID string // default linesight-<Device>
	Username string
	Password string
	TLS      TLSFiles
	// Site and Device are topic segments (wire.ValidID).
	Site, Device string

	// Outbox is the store (required).
	Outbox Outbox
	// Telemetry, when set, is published every TelemetryEvery (default 10s).
	Telemetry      Telemetry
	TelemetryEvery time.Duration
	// Status fills the retained status message (optional).
	Status Status
	// Commands, Rollback and Promote receive down-link commands (optional:
	// without them the commands are logged and ignored).
	Commands Commands
	Rollback Rollbacker
	Promote  Promoter

	// DrainRate caps outbox entries published per second (default 2000).
	DrainRate float64
	// Window caps entries published but not yet acknowledged (default 256).
	Window int
	// AckTimeout: un-acknowledged entries are sent again once it has passed
	// since they were sent and since the collector's last ack (default 30s).
	AckTimeout time.Duration
	// PollEvery is how often the outbox is checked for new entries (default 100ms).
	PollEvery time.Duration
	// KeepAlive (default 30s), ConnectTimeout (default 10s) and
	// MaxReconnectInterval (the reconnect backoff's ceiling, default 30s).
	KeepAlive            time.Duration
	ConnectTimeout       time.Duration
	MaxReconnectInterval time.Duration

	// Logger is tagged component=uplink (default: discard).
	Logger *slog.Logger
}

// Sentinel errors.
var (
	// ErrOffline: Publish was called while the link is down.
	ErrOffline = errors.New("mqtt link is down")
	// ErrClosed: the uplink is closed.
	ErrClosed = errors.New("uplink closed")
)

// Stats are the uplink's counters since Open.
type Stats struct {
	Connected bool   `json:"connected"`
	Connects  uint64 `json:"connects"`
	Sent      uint64 `json:"sent"`     // outbox publications, resends included
	Resent    uint64 `json:"resent"`   // passes that started again from the oldest pending entry
	Acked     uint64 `json:"acked"`    // entries removed from the outbox
	Rejected  uint64 `json:"rejected"` // entries the collector refused for good
	InFlight  int    `json:"in_flight"`
	// Frames counts samples sent as wire sample frames (the collector
	// said it takes them) rather than JSON envelopes.
	Frames uint64 `json:"frames"`
}

// Uplink is the device's MQTT link. Safe for concurrent use.
type Uplink struct {
	o   Options
	log *slog.Logger
	cli paho.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	handlers map[string]Handler

	acks *queue[wire.Ack]
	// commits carries acknowledged IDs from the drain to the committer.
	commits *queue[[]string]
	cmds    *queue[[]byte]
	extra   map[string]*queue[message]
	wake    chan struct{}

	reconnected atomic.Bool
	connected   atomic.Bool
	// framed: the collector's last ack accepted sample frames; cleared
	// whenever the drain starts again from the oldest entry (a reconnect,
	// an ack timeout), so a collector that cannot read them gets JSON.
	framed   atomic.Bool
	frames   atomic.Uint64
	connects atomic.Uint64
	sent     atomic.Uint64
	resent   atomic.Uint64
	acked    atomic.Uint64
	rejected atomic.Uint64
	inflight atomic.Int64
	closed   atomic.Bool
}

type message struct {
	topic   string
	payload []byte
}

// New checks the options and prepares an uplink; Open connects.
func New(o Options) (*Uplink, error) {
	if o.Outbox == nil {
		return nil, errors.New("uplink: Options.Outbox is required")
	}
	if !wire.ValidID(o.Site) || !wire.ValidID(o.Device) {
		return nil, fmt.Errorf("uplink: site %q and device %q must be 1-64 letters, digits, '-' or '_'", o.Site, o.Device)
	}
	if o.Broker == "" {
		return nil, errors.New("uplink: Options.Broker is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.TelemetryEvery, 10*time.Second)
	def(&o.AckTimeout, 30*time.Second)
	def(&o.PollEvery, 100*time.Millisecond)
	def(&o.KeepAlive, 30*time.Second)
	def(&o.ConnectTimeout, 10*time.Second)
	def(&o.MaxReconnectInterval, 30*time.Second)
	if o.DrainRate <= 0 {
		o.DrainRate = 2000
	}
	if o.Window <= 0 {
		o.Window = 256
	}
	if o.ClientID == "" {
		o.ClientID = "linesight-" + o.Device
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Uplink{
		o: o, log: o.Logger.With("component", "uplink"),
		handlers: map[string]Handler{}, extra: map[string]*queue[message]{},
		acks: newQueue[wire.Ack](), commits: newQueue[[]string](), cmds: newQueue[[]byte](), wake: make(chan struct{}, 1),
	}, nil
}

// Handle routes messages on a down-link topic filter (for example
// wire.Topic(site, device, wire.KindModelOffer)) to h. Call it before Open.
func (u *Uplink) Handle(filter string, h Handler) {
	u.handlers[filter] = h
}

// Topic is this device's topic of a device-wide kind.
func (u *Uplink) Topic(k wire.Kind) string { return wire.Topic(u.o.Site, u.o.Device, k) }

// DecisionTopic is a camera's decisions topic, for the agent's verdict output.
func (u *Uplink) DecisionTopic(camera string) string {
	return wire.CameraTopic(u.o.Site, u.o.Device, camera, wire.KindDecisions)
}

func (u *Uplink) tlsConfig() (*tls.Config, error) {
	f := u.o.TLS
	if f.CA == "" && f.Cert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("uplink tls ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink tls ca %s: no certificate found", f.CA)
		}
	}
	if f.Cert != "" {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("uplink tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

func (u *Uplink) status(state string) []byte {
	var st wire.Status
	if u.o.Status != nil && state == wire.StateOnline {
		st = u.o.Status.Status()
	}
	st.State = state
	b, err := wire.Encode(wire.Envelope{Type: wire.TypeStatus, Device: u.o.Device, Time: time.Now().UTC()}, st)
	if err != nil {
		u.log.Error("encode status", "err", err)
		b, _ = wire.Encode(wire.Envelope{Type: wire.TypeStatus, Device: u.o.Device, Time: time.Now().UTC()}, wire.Status{State: state})
	}
	return b
}

// Open starts the link. It does not wait for the first connection: paho
// keeps retrying with backoff, and the outbox simply waits.
func (u *Uplink) Open(ctx context.Context) error {
	tcfg, err := u.tlsConfig()
	if err != nil {
		return err
	}
	u.ctx, u.cancel = context.WithCancel(context.WithoutCancel(ctx))
	po := paho.NewClientOptions().AddBroker(u.o.Broker).SetClientID(u.o.ClientID).
		SetCleanSession(false).SetStore(pahostore.Copy()).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(u.o.MaxReconnectInterval).
		SetKeepAlive(u.o.KeepAlive).SetConnectTimeout(u.o.ConnectTimeout).SetWriteTimeout(u.o.ConnectTimeout).
		SetBinaryWill(u.Topic(wire.KindStatus), u.status(wire.StateOffline), 1, true).
		SetOnConnectHandler(u.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			u.connected.Store(false)
			u.log.Warn("mqtt link lost; reconnecting", "err", err)
		})
	if u.o.Username != "" {
		po.SetUsername(u.o.Username).SetPassword(u.o.Password)
	}
	if tcfg != nil {
		po.SetTLSConfig(tcfg)
	}
	for filter := range u.handlers {
		u.extra[filter] = newQueue[message]()
	}
	u.cli = paho.NewClient(po)
	u.cli.Connect() // retries in the background (ConnectRetry)

	u.wg.Add(4 + len(u.extra))
	go func() { defer u.wg.Done(); u.drain() }()
	go func() { defer u.wg.Done(); u.commit() }()
	go func() { defer u.wg.Done(); u.runCommands() }()
	go func() { defer u.wg.Done(); u.runTelemetry() }()
	for filter, q := range u.extra {
		go func() { defer u.wg.Done(); u.runHandler(filter, q) }()
	}
	return nil
}

// onConnect runs on paho's goroutine: it only subscribes and publishes
// without waiting.
func (u *Uplink) onConnect(c paho.Client) {
	u.connects.Add(1)
	u.connected.Store(true)
	u.reconnected.Store(true)
	u.poke()
	u.log.Info("mqtt link up", "broker", u.o.Broker, "client_id", u.o.ClientID)
	c.Publish(u.Topic(wire.KindStatus), 1, true, u.status(wire.StateOnline))
	subs := map[string]byte{u.Topic(wire.KindAck): 1, u.Topic(wire.KindCommand): 1, u.Topic(wire.KindConfig): 1}
	for f := range u.handlers {
		subs[f] = 1
	}
	c.SubscribeMultiple(subs, u.route)
}

// route is paho's message callback: it only queues.
func (u *Uplink) route(_ paho.Client, m paho.Message) {
	topic, payload := m.Topic(), m.Payload()
	if q, ok := u.extra[topic]; ok {
		q.push(message{topic, payload})
		return
	}
	a, err := wire.ParseTopic(topic)
	if err != nil {
		for f, q := range u.extra { // a wildcard handler filter
			if match(f, topic) {
				q.push(message{topic, payload})
				return
			}
		}
		u.log.Warn("down-link message on an unknown topic", "topic", topic)
		return
	}
	switch a.Kind {
	case wire.KindAck:
		_, ack, err := wire.DecodeAck(payload)
		if err != nil {
			u.log.Warn("bad ack", "err", err)
			return
		}
		if slices.Contains(ack.Accept, wire.AcceptSampleFrame) {
			u.framed.Store(true)
		}
		u.acks.push(ack)
		u.poke()
	case wire.KindCommand, wire.KindConfig:
		u.cmds.push(append([]byte(nil), payload...))
	default:
		for f, q := range u.extra {
			if match(f, topic) {
				q.push(message{topic, payload})
				return
			}
		}
	}
}

func (u *Uplink) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Publish sends payload on topic with QoS 1 over the uplink's connection
// and waits for the broker's PUBACK or ctx. The agent's live decisions use
// it (see DecisionTopic); it bypasses the outbox's rate limit. ErrOffline
// when the link is down: the caller decides whether to drop or store.
func (u *Uplink) Publish(ctx context.Context, topic string, payload []byte) error {
	if u.closed.Load() || u.cli == nil {
		return ErrClosed
	}
	if !u.cli.IsConnectionOpen() {
		return ErrOffline
	}
	tok := u.cli.Publish(topic, 1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", topic, ctx.Err())
	}
}

// Connected reports whether the link is up.
func (u *Uplink) Connected() bool { return u.cli != nil && u.cli.IsConnectionOpen() }

// Stats returns the counters.
func (u *Uplink) Stats() Stats {
	return Stats{
		Connected: u.Connected(), Connects: u.connects.Load(), Sent: u.sent.Load(), Resent: u.resent.Load(),
		Acked: u.acked.Load(), Rejected: u.rejected.Load(), InFlight: int(u.inflight.Load()), Frames: u.frames.Load(),
	}
}

// Close publishes status "offline" (best effort), disconnects and waits for
// the goroutines. Entries in flight stay in the outbox.
func (u *Uplink) Close() error {
	if u.closed.Swap(true) || u.cancel == nil {
		return nil
	}
	if u.cli.IsConnectionOpen() {
		tok := u.cli.Publish(u.Topic(wire.KindStatus), 1, true, u.status(wire.StateOffline))
		tok.WaitTimeout(2 * time.Second)
	}
	u.cancel()
	u.acks.close()
	u.commits.close()
	u.cmds.close()
	for _, q := range u.extra {
		q.close()
	}
	u.wg.Wait()
	u.cli.Disconnect(250)
	return nil
}

func (u *Uplink) runCommands() {
	for {
		b, ok := u.cmds.pop()
		if !ok {
			return
		}
		u.command(b)
	}
}

func (u *Uplink) command(b []byte) {
	if e, err := wire.Decode(b, ""); err == nil && e.Type == wire.TypeConfig {
		_, cfg, err := wire.DecodeConfig(b)
		u.log.Warn("config push not applied (runtime configuration is not supported yet)", "revision", cfg.Revision, "err", err)
		return
	}
	_, c, err := wire.DecodeCommand(b)
	if err != nil {
		u.log.Warn("bad command", "err", err)
		return
	}
	log := u.log.With("op", c.Op, "camera", c.Camera, "by", c.By)
	switch {
	case c.Op == wire.OpRollback && u.o.Rollback != nil:
		err = u.o.Rollback.Rollback(u.ctx, c.By)
	case c.Op == wire.OpPromote && u.o.Promote != nil:
		err = u.o.Promote.Promote(u.ctx, c.By)
	case c.Op == wire.OpRollback, c.Op == wire.OpPromote, u.o.Commands == nil:
		log.Warn("command ignored: nothing handles it on this device")
		return
	case c.Op == wire.OpSetLevel:
		var lvl policy.Level
		if lvl, err = policy.ParseLevel(c.Level); err == nil {
			err = u.o.Commands.SetLevel(u.ctx, c.Camera, lvl, c.By)
		}
	case c.Op == wire.OpTrigger:
		err = u.o.Commands.Trigger(u.ctx, c.Camera, c.PartID)
	}
	if err != nil {
		log.Error("command failed", "err", err)
		return
	}
	log.Info("command done", "level", c.Level, "part_id", c.PartID)
}

func (u *Uplink) runHandler(filter string, q *queue[message]) {
	h := u.handlers[filter]
	for {
		m, ok := q.pop()
		if !ok {
			return
		}
		h(u.ctx, m.topic, m.payload)
	}
}

func (u *Uplink) runTelemetry() {
	if u.o.Telemetry == nil {
		<-u.ctx.Done()
		return
	}
	t := time.NewTicker(u.o.TelemetryEvery)
	defer t.Stop()
	for {
		select {
		case <-u.ctx.Done():
			return
		case <-t.C:
		}
		if !u.cli.IsConnectionOpen() {
			continue // a snapshot is not worth keeping
		}
		tel := u.o.Telemetry.Telemetry()
		b, err := wire.Encode(wire.Envelope{Type: wire.TypeTelemetry, Device: u.o.Device, Time: time.Now().UTC()}, tel)
		if err != nil {
			u.log.Error("encode telemetry", "err", err)
			continue
		}
		u.cli.Publish(u.Topic(wire.KindTelemetry), 0, false, b)
	}
}

// match reports whether an MQTT topic filter matches a topic.
func match(filter, topic string) bool {
	for {
		fi, fr, fmore := cut(filter)
		ti, tr, tmore := cut(topic)
		switch {
		case fi == "#":
			return true
		case fi != "+" && fi != ti:
			return false
		case !fmore || !tmore:
			return fmore == tmore
		}
		filter, topic = fr, tr
	}
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
