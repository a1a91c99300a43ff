package rollout

import (
	"fmt"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/sync/wire"
)

// DeviceHandler receives a device's model messages from a Link. Both
// methods are called on paho's goroutine and must not block (queue the
// work); a message the handler cannot take is simply asked for again.
type DeviceHandler interface {
	// HandleOffer is called for every offer on the device's or its groups'
	// offer topics, including retained ones at every (re)connection.
	HandleOffer(o wire.ModelOffer)
	// HandleChunk is called for every chunk on the device's chunk topic.
	HandleChunk(c wire.ModelChunk)
}

// LinkOptions configure a device Link.
type LinkOptions struct {
	Site, Device string
	Groups       []string
	Logger       *slog.Logger
	Timeout      time.Duration // per publish or subscribe (default 10s)
}

// Link is the device side of the rollout over MQTT, on a client the agent
// already holds (the uplink's): it subscribes to the device's (and its
// groups') offers and its chunks and passes them to a DeviceHandler, and
// publishes chunk requests and model state. agent/lifecycle takes it as
// its Requester and Reporter.
type Link struct {
	c       paho.Client
	o       LinkOptions
	log     *slog.Logger
	filters []string
}

// AttachDevice subscribes (QoS 1) and starts passing messages to h.
func AttachDevice(c paho.Client, o LinkOptions, h DeviceHandler) (*Link, error) {
	if !wire.ValidID(o.Site) || !wire.ValidID(o.Device) || o.Device == wire.GroupsSegment {
		return nil, fmt.Errorf("attach device: bad site %q or device %q", o.Site, o.Device)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Link{c: c, o: o, log: o.Logger.With("component", "rollout")}
	onOffer := func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) == 0 {
			return // a withdrawn (cleared) retained offer
		}
		_, off, err := wire.DecodeModelOffer(m.Payload())
		if err != nil {
			l.log.Warn("bad model offer", "topic", m.Topic(), "err", err)
			return
		}
		h.HandleOffer(off)
	}
	onChunk := func(_ paho.Client, m paho.Message) {
		_, ch, err := wire.DecodeModelChunk(m.Payload())
		if err != nil {
			l.log.Warn("bad model chunk", "topic", m.Topic(), "err", err)
			return
		}
		h.HandleChunk(ch)
	}
	subs := map[string]paho.MessageHandler{
		wire.Topic(o.Site, o.Device, wire.KindModelOffer): onOffer,
		wire.Topic(o.Site, o.Device, wire.KindModelChunk): onChunk,
	}
	for _, g := range o.Groups {
		if !wire.ValidID(g) {
			return nil, fmt.Errorf("attach device: bad group %q", g)
		}
		subs[wire.GroupTopic(o.Site, g, wire.KindModelOffer)] = onOffer
	}
	for f, cb := range subs {
		tok := c.Subscribe(f, 1, cb)
		if !tok.WaitTimeout(o.Timeout) || tok.Error() != nil {
			l.Close()
			return nil, fmt.Errorf("subscribe %s: %v", f, tokenErr(tok))
		}
		l.filters = append(l.filters, f)
	}
	return l, nil
}

// RequestChunks asks the fleet for chunks of offer (at most
// wire.MaxRequestChunk per call). It blocks until the broker has the
// request or the timeout passes.
func (l *Link) RequestChunks(offer string, chunks []int) error {
	b, err := wire.Encode(wire.Envelope{Type: wire.TypeModelRequest, Device: l.o.Device, Time: time.Now().UTC()}, wire.ModelRequest{Offer: offer, Chunks: chunks})
	if err != nil {
		return fmt.Errorf("request chunks: %w", err)
	}
	tok := l.c.Publish(wire.Topic(l.o.Site, l.o.Device, wire.KindModelRequest), 1, false, b)
	if !tok.WaitTimeout(l.o.Timeout) || tok.Error() != nil {
		return fmt.Errorf("request chunks: %v", tokenErr(tok))
	}
	return nil
}

// ReportState publishes s on model/state (QoS 1, retained: the fleet sees
// the latest state of every device when it connects).
func (l *Link) ReportState(s wire.ModelState) error {
	b, err := wire.Encode(wire.Envelope{Type: wire.TypeModelState, Device: l.o.Device, Time: time.Now().UTC()}, s)
	if err != nil {
		return fmt.Errorf("report model state: %w", err)
	}
	tok := l.c.Publish(wire.Topic(l.o.Site, l.o.Device, wire.KindModelState), 1, true, b)
	if !tok.WaitTimeout(l.o.Timeout) || tok.Error() != nil {
		return fmt.Errorf("report model state: %v", tokenErr(tok))
	}
	return nil
}

// Close unsubscribes (the client stays connected).
func (l *Link) Close() error {
	if len(l.filters) > 0 {
		l.c.Unsubscribe(l.filters...).WaitTimeout(l.o.Timeout)
	}
	return nil
}
