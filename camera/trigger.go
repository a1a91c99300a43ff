package camera

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TriggerMessage is a part trigger as JSON, over HTTP or MQTT:
//
//	{"part_id": "P-000123", "deadline_ms": 400}
//
// deadline_ms is relative to when the trigger is received (clock skew
// between the PLC gateway and this device does not matter); deadline is an
// absolute RFC 3339 time. With neither, the camera's trigger.deadline applies.
type TriggerMessage struct {
	PartID     string    `json:"part_id"`
	DeadlineMS int64     `json:"deadline_ms,omitempty"`
	Deadline   time.Time `json:"deadline,omitzero"`
}

// Part converts the message into a Part received at received.
func (m TriggerMessage) Part(received time.Time) (Part, error) {
	if err := checkPartID(m.PartID); err != nil {
		return Part{}, err
	}
	p := Part{ID: m.PartID, Received: received, Deadline: m.Deadline}
	switch {
	case m.DeadlineMS < 0:
		return Part{}, fmt.Errorf("%w: deadline_ms %d must be > 0", ErrBadTrigger, m.DeadlineMS)
	case m.DeadlineMS > 0:
		p.Deadline = received.Add(time.Duration(m.DeadlineMS) * time.Millisecond)
	}
	return p, nil
}

// ParseTrigger decodes a JSON trigger message (at most 4 KiB).
func ParseTrigger(r io.Reader, received time.Time) (Part, error) {
	var m TriggerMessage
	dec := json.NewDecoder(io.LimitReader(r, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Part{}, fmt.Errorf("%w: body must be JSON like {\"part_id\":\"P-1\",\"deadline_ms\":400}: %v", ErrBadTrigger, err)
	}
	return m.Part(received)
}

// Triggerer is what a trigger transport needs of a camera (*Camera).
type Triggerer interface {
	// Trigger queues one part for capture without blocking; see Camera.Trigger.
	Trigger(Part) error
}

var _ Triggerer = (*Camera)(nil)

// Lookup finds a camera by ID for a trigger transport.
type Lookup func(id string) (Triggerer, bool)

// TriggerRoute is the pattern to mount TriggerHandler on an http.ServeMux.
const TriggerRoute = "POST /api/v1/cameras/{id}/trigger"

// TriggerHandler serves part triggers over HTTP. Mount it at TriggerRoute:
// the camera ID is the {id} path value, the body a TriggerMessage. It
// answers 202 Accepted with {"camera","part_id","deadline"} once the part
// is queued for capture (the verdict follows on the outputs), 400 for a bad
// body, 404 for an unknown camera, 409 for a free-running camera and 503
// for a closed or finished one; errors are JSON {"error": "..."}.
func TriggerHandler(lookup Lookup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST with a JSON body"})
			return
		}
		id := r.PathValue("id")
		cam, ok := lookup(id)
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no camera %q on this device", id)})
			return
		}
		p, err := ParseTrigger(r.Body, now)
		if err == nil {
			err = cam.Trigger(p)
		}
		if err != nil {
			writeJSON(w, triggerStatus(err), map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"camera": id, "part_id": p.ID, "deadline": p.Deadline})
	})
}

func triggerStatus(err error) int {
	switch {
	case errors.Is(err, ErrBadTrigger):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotTriggered):
		return http.StatusConflict
	default:
		return http.StatusServiceUnavailable
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// TriggerTopic is the MQTT topic a camera's part triggers arrive on:
// linesight/v1/<site>/<device>/<camera>/trigger.
func TriggerTopic(site, device, camera string) string {
	return "linesight/v1/" + site + "/" + device + "/" + camera + "/trigger"
}

// MQTTTriggerOptions configures the MQTT trigger subscriber.
type MQTTTriggerOptions struct {
	Broker             string // tcp://host:port, ssl://host:port
	ClientID           string // default linesight-<device>-trigger
	Username, Password string
	Site, Device       string // topic segments; no '/', '+' or '#'
	Lookup             Lookup
	Logger             *slog.Logger
	ConnectTimeout     time.Duration // first connection; default 10s
}

// MQTTTrigger subscribes to every camera's trigger topic of this device
// (QoS 1, resubscribed on reconnect) and hands the parts to the cameras.
// A message that cannot be used (bad JSON, unknown camera, free-running
// camera) is logged and counted in Rejected.
type MQTTTrigger struct {
	client   paho.Client
	filter   string
	log      *slog.Logger
	accepted atomic.Uint64
	rejected atomic.Uint64
}

// OpenMQTTTrigger connects to the broker and subscribes. It fails when the
// first connection or subscription does not succeed in time; after that,
// paho reconnects on its own.
func OpenMQTTTrigger(o MQTTTriggerOptions) (*MQTTTrigger, error) {
	for name, v := range map[string]string{"site": o.Site, "device": o.Device} {
		if v == "" || strings.ContainsAny(v, "/+#") {
			return nil, fmt.Errorf("mqtt trigger: %s %q must be non-empty without '/', '+' or '#'", name, v)
		}
	}
	if o.Lookup == nil {
		return nil, errors.New("mqtt trigger: no camera lookup")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.ClientID == "" {
		o.ClientID = "linesight-" + o.Device + "-trigger"
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	t := &MQTTTrigger{filter: TriggerTopic(o.Site, o.Device, "+"), log: log.With("component", "camera-trigger")}
	copts := paho.NewClientOptions().AddBroker(o.Broker).SetClientID(o.ClientID).
		SetUsername(o.Username).SetPassword(o.Password).
		SetAutoReconnect(true).SetConnectRetry(false).SetCleanSession(true).
		SetConnectTimeout(o.ConnectTimeout).SetMaxReconnectInterval(30 * time.Second)
	handler := func(_ paho.Client, m paho.Message) { t.handle(o.Lookup, m) }
	subErr := make(chan error, 1)
	copts.SetOnConnectHandler(func(c paho.Client) {
		tok := c.Subscribe(t.filter, 1, handler)
		tok.WaitTimeout(o.ConnectTimeout)
		err := tok.Error()
		if err != nil {
			t.log.Error("subscribe to triggers failed", "topic", t.filter, "err", err)
		}
		select {
		case subErr <- err:
		default:
		}
	})
	copts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		t.log.Warn("mqtt connection lost; reconnecting", "err", err)
	})
	t.client = paho.NewClient(copts)
	tok := t.client.Connect()
	if !tok.WaitTimeout(o.ConnectTimeout) {
		t.client.Disconnect(0)
		return nil, fmt.Errorf("mqtt trigger: connect to %s: timed out after %s", o.Broker, o.ConnectTimeout)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("mqtt trigger: connect to %s: %w", o.Broker, err)
	}
	select {
	case err := <-subErr:
		if err != nil {
			t.client.Disconnect(250)
			return nil, fmt.Errorf("mqtt trigger: subscribe %s: %w", t.filter, err)
		}
	case <-time.After(o.ConnectTimeout):
		t.client.Disconnect(250)
		return nil, fmt.Errorf("mqtt trigger: subscribe %s: timed out", t.filter)
	}
	t.log.Info("listening for part triggers", "topic", t.filter)
	return t, nil
}

func (t *MQTTTrigger) handle(lookup Lookup, m paho.Message) {
	now := time.Now()
	parts := strings.Split(m.Topic(), "/")
	id := parts[len(parts)-2]
	cam, ok := lookup(id)
	var err error
	var p Part
	if !ok {
		err = fmt.Errorf("no camera %q on this device", id)
	} else if p, err = ParseTrigger(strings.NewReader(string(m.Payload())), now); err == nil {
		err = cam.Trigger(p)
	}
	if err != nil {
		t.rejected.Add(1)
		t.log.Warn("part trigger rejected", "topic", m.Topic(), "err", err)
		return
	}
	t.accepted.Add(1)
}

// Accepted and Rejected count trigger messages since Open.
func (t *MQTTTrigger) Accepted() uint64 { return t.accepted.Load() }

// Rejected counts trigger messages that could not be used.
func (t *MQTTTrigger) Rejected() uint64 { return t.rejected.Load() }

// Close unsubscribes and disconnects, waiting up to 250 ms for work in flight.
func (t *MQTTTrigger) Close() error {
	if t.client.IsConnected() {
		t.client.Unsubscribe(t.filter).WaitTimeout(time.Second)
	}
	t.client.Disconnect(250)
	return nil
}
