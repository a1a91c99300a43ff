package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/sync/wire"
)

// Target is where an offer goes: one device, or a group.
type Target struct {
	Site   string
	Device string // one of Device and Group is set
	Group  string
}

// ParseTarget reads push's --to: "DEVICE" or "group:NAME" (site given apart).
func ParseTarget(site, to string) (Target, error) {
	t := Target{Site: site}
	if g, ok := strings.CutPrefix(to, "group:"); ok {
		t.Group = g
	} else {
		t.Device = to
	}
	name := t.Device + t.Group
	if !wire.ValidID(site) || !wire.ValidID(name) || t.Device == wire.GroupsSegment {
		return Target{}, fmt.Errorf("target %q in site %q: want DEVICE or group:NAME (1-64 letters, digits, '-', '_')", to, site)
	}
	return t, nil
}

// String is the form Release.Target records.
func (t Target) String() string {
	if t.Group != "" {
		return "group:" + t.Group
	}
	return t.Device
}

// OfferTopic is the topic the target's offers are published on.
func (t Target) OfferTopic() string {
	if t.Group != "" {
		return wire.GroupTopic(t.Site, t.Group, wire.KindModelOffer)
	}
	return wire.Topic(t.Site, t.Device, wire.KindModelOffer)
}

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Site limits the requests served to one site; empty serves every site.
	Site   string
	Logger *slog.Logger
	// Timeout bounds each publish's wait for the broker (default 10s).
	Timeout time.Duration
	// Lookup, when set, is asked for the release of a requested offer that
	// Offer did not register here (for example Releases.Get: offers pushed
	// by another process). Called from the publisher's goroutine.
	Lookup func(offer string) (*Release, *Source, error)
}

// Publisher is the fleet side of a rollout: it publishes signed offers
// (QoS 1, retained, so a device that is offline gets the offer when it
// connects) and answers devices' chunk requests from the package on disk.
//
// Open it with NewPublisher on a connected paho client and Close it; it
// owns one goroutine that reads and publishes chunks, so paho's message
// handler never blocks.
type Publisher struct {
	c       paho.Client
	log     *slog.Logger
	filter  string
	timeout time.Duration
	lookup  func(offer string) (*Release, *Source, error)

	mu      sync.Mutex
	sources map[string]*Source // by offer ID
	served  map[string]int     // chunks sent, by offer ID

	reqs   chan request
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type request struct {
	site, device string
	r            wire.ModelRequest
}

// NewPublisher subscribes to chunk requests.
func NewPublisher(c paho.Client, o PublisherOptions) (*Publisher, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	site := o.Site
	if site == "" {
		site = "+"
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{c: c, log: o.Logger.With("component", "rollout"), timeout: o.Timeout, lookup: o.Lookup,
		filter:  wire.Root + "/" + site + "/+/" + string(wire.KindModelRequest),
		sources: map[string]*Source{}, served: map[string]int{}, reqs: make(chan request, 256), ctx: ctx, cancel: cancel}
	tok := c.Subscribe(p.filter, 1, p.onRequest)
	if !tok.WaitTimeout(o.Timeout) || tok.Error() != nil {
		cancel()
		return nil, fmt.Errorf("subscribe %s: %v", p.filter, tokenErr(tok))
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func tokenErr(t paho.Token) error {
	if t.Error() != nil {
		return t.Error()
	}
	return fmt.Errorf("timed out")
}

// Offer publishes a signed offer to t and serves its chunks from src.
func (p *Publisher) Offer(t Target, offer *wire.ModelOffer, r *Release, src *Source) error {
	b, err := wire.Encode(wire.Envelope{Type: wire.TypeModelOffer, ID: "offer-" + r.Offer, Time: time.Now().UTC()}, offer)
	if err != nil {
		return fmt.Errorf("offer %s: %w", r.Offer, err)
	}
	p.mu.Lock()
	p.sources[r.Offer] = src
	p.mu.Unlock()
	tok := p.c.Publish(t.OfferTopic(), 1, true, b)
	if !tok.WaitTimeout(p.timeout) || tok.Error() != nil {
		return fmt.Errorf("publish offer %s to %s: %v", r.Offer, t.OfferTopic(), tokenErr(tok))
	}
	p.log.Info("model offered", "offer", r.Offer, "model", r.Name, "version", r.Version, "to", t.String(), "stage", r.Stage, "chunks", len(r.Chunks))
	return nil
}

// Withdraw clears the retained offer on t's topic (an empty retained
// message) and stops serving offer.
func (p *Publisher) Withdraw(t Target, offer string) error {
	p.mu.Lock()
	delete(p.sources, offer)
	p.mu.Unlock()
	tok := p.c.Publish(t.OfferTopic(), 1, true, []byte{})
	if !tok.WaitTimeout(p.timeout) || tok.Error() != nil {
		return fmt.Errorf("withdraw offer %s: %v", offer, tokenErr(tok))
	}
	return nil
}

// Served is the number of chunks sent for offer so far.
func (p *Publisher) Served(offer string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served[offer]
}

// onRequest runs on paho's goroutine: decode and queue, never block.
func (p *Publisher) onRequest(_ paho.Client, m paho.Message) {
	a, err := wire.ParseModelTopic(m.Topic())
	if err != nil || a.Device == "" {
		return
	}
	_, r, err := wire.DecodeModelRequest(m.Payload())
	if err != nil {
		p.log.Warn("bad chunk request", "topic", m.Topic(), "err", err)
		return
	}
	select {
	case p.reqs <- request{site: a.Site, device: a.Device, r: r}:
	default:
		p.log.Warn("chunk requests queue full; the device will ask again", "device", a.Device)
	}
}

func (p *Publisher) serve() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case q := <-p.reqs:
			p.answer(q)
		}
	}
}

func (p *Publisher) answer(q request) {
	p.mu.Lock()
	src := p.sources[q.r.Offer]
	p.mu.Unlock()
	if src == nil && p.lookup != nil {
		if _, s, err := p.lookup(q.r.Offer); err == nil {
			src = s
			p.mu.Lock()
			p.sources[q.r.Offer] = s
			p.mu.Unlock()
		} else {
			p.log.Debug("requested offer not stored", "offer", q.r.Offer, "err", err)
		}
	}
	if src == nil {
		p.log.Debug("request for an offer not served here", "offer", q.r.Offer, "device", q.device)
		return
	}
	topic := wire.Topic(q.site, q.device, wire.KindModelChunk)
	var toks []paho.Token
	for _, k := range q.r.Chunks {
		data, err := src.Chunk(k)
		if err != nil {
			p.log.Error("read chunk", "offer", q.r.Offer, "chunk", k, "err", err)
			continue
		}
		b, err := wire.Encode(wire.Envelope{Type: wire.TypeModelChunk, Time: time.Now().UTC()}, wire.NewModelChunk(q.r.Offer, k, data))
		if err != nil {
			p.log.Error("encode chunk", "offer", q.r.Offer, "chunk", k, "err", err)
			continue
		}
		toks = append(toks, p.c.Publish(topic, 1, false, b))
	}
	n := 0
	for _, t := range toks {
		if t.WaitTimeout(p.timeout) && t.Error() == nil {
			n++
		}
		if p.ctx.Err() != nil {
			return
		}
	}
	p.mu.Lock()
	p.served[q.r.Offer] += n
	p.mu.Unlock()
}

// Close stops answering requests and unsubscribes. It does not disconnect
// the client.
func (p *Publisher) Close() error {
	p.cancel()
	p.wg.Wait()
	tok := p.c.Unsubscribe(p.filter)
	tok.WaitTimeout(p.timeout)
	return nil
}
