package pipeline

import (
	"maps"
	"slices"
	"time"

	"github.com/linesight/linesight/agent/monitor"
	"github.com/linesight/linesight/agent/policy"
)

// EventKind says what an Event carries.
type EventKind string

const (
	EventDecision EventKind = "decision" // a part was decided and committed
	EventAlarm    EventKind = "alarm"    // a drift or defer-rate alarm was raised or cleared
	EventLevel    EventKind = "level"    // a camera's automation level changed
	EventModel    EventKind = "model"    // a new model is serving
)

// Event is something the live view shows as it happens.
type Event struct {
	Kind     EventKind
	Time     time.Time
	Camera   string // empty for device-wide events
	Decision *DecisionEvent
	Alarm    *Alarm
	Level    policy.Level // EventLevel: the new level
	From     policy.Level // EventLevel: the level before
	By       string       // EventLevel: who changed it
	Text     string       // a sentence for people
}

// DecisionEvent is one decided part.
type DecisionEvent struct {
	ID, PartID string
	Time       time.Time // capture time
	Verdict    policy.Verdict
	Reason     policy.Reason
	Level      policy.Level
	Top        string
	PGood      float64
	Review     bool
	Audit      bool
	Image      bool // the store kept its image
	Latency    time.Duration
}

// Alarm is a raised or cleared alarm.
type Alarm struct {
	Kind   string // "drift" or "defer-rate"
	Raised bool
	Detail string
	PSI    map[string]float64 `json:",omitempty"`
}

// Subscribe returns a channel of events with room for buffer of them and a
// function that ends the subscription. A subscriber that falls behind loses
// events (the line never waits for a browser); the channel is closed when
// the pipeline closes or cancel is called.
func (p *Pipeline) Subscribe(buffer int) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = 64
	}
	ch := make(chan Event, buffer)
	p.subMu.Lock()
	defer p.subMu.Unlock()
	if p.closing.Load() {
		close(ch)
		return ch, func() {}
	}
	id := p.nextID
	p.nextID++
	p.subs[id] = ch
	return ch, func() {
		p.subMu.Lock()
		defer p.subMu.Unlock()
		if c, ok := p.subs[id]; ok {
			close(c)
			delete(p.subs, id)
		}
	}
}

func (p *Pipeline) emit(e Event) {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	for _, ch := range p.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// CameraStatus is a camera's state for the live view, telemetry and tests.
type CameraStatus struct {
	ID    string
	Level policy.Level // as set (configuration, UI or MQTT command)
	// Effective is the level parts are decided at: Level, or assist while
	// a drift alarm lowers partial and full (policy.drift_downgrade).
	Effective policy.Level
	Parts     uint64                    // parts decided since start
	Verdicts  map[policy.Verdict]uint64 // by verdict
	Reasons   map[policy.Reason]uint64  // by reason
	DeferRate float64                   // over the recent window
	DeferAlrm bool
	// Throughput is parts per second over the last 10 s.
	Throughput float64
	// LatencyP50 and LatencyP99: capture to decision over the last 1024 parts.
	LatencyP50, LatencyP99 time.Duration
	Drift                  monitor.Report
	InFlight               int64 // taken from the camera, not yet committed
	// ModelVerdicts counts the model's own would-be verdicts at every level,
	// shadow included; agreement with the inspectors is measured from the
	// store's labels.
	ModelVerdicts map[policy.Verdict]uint64
	// Last are the latest decisions, newest first.
	Last []DecisionEvent
}

// Cameras reports every camera's status, in configuration order.
func (p *Pipeline) Cameras() []CameraStatus {
	out := make([]CameraStatus, 0, len(p.cams))
	now := time.Now()
	for _, c := range p.cams {
		c.mu.Lock()
		st := CameraStatus{
			ID: c.id, Level: c.level(), Parts: c.stats.parts,
			Verdicts: maps.Clone(c.stats.verdicts), Reasons: maps.Clone(c.stats.reasons), ModelVerdicts: maps.Clone(c.stats.model),
			DeferRate: c.deferWin.Rate(), DeferAlrm: c.deferWin.Alarm(), Throughput: c.stats.throughput(now),
			Drift: c.driftRep, InFlight: c.pending.Load(),
		}
		st.LatencyP50, st.LatencyP99 = c.stats.percentiles()
		st.Last = c.stats.latest()
		c.mu.Unlock()
		st.Effective = st.Level
		p.mu.RLock()
		down := p.base.DriftDowngrade
		p.mu.RUnlock()
		if down && st.Drift.Alarm && st.Level >= policy.Partial {
			st.Effective = policy.Assist
		}
		out = append(out, st)
	}
	return out
}

// Model names the model serving and its execution provider.
func (p *Pipeline) Model() (name, version, provider string) {
	m := p.opts.Engine.Manifest()
	return m.Name, m.Version, p.opts.Engine.Provider()
}

// camStats are one camera's running counts; guarded by cam.mu.
type camStats struct {
	parts    uint64
	verdicts map[policy.Verdict]uint64
	reasons  map[policy.Reason]uint64
	model    map[policy.Verdict]uint64
	lat      []time.Duration // ring
	at       []time.Time     // decision times, same ring
	next     int
	filled   int
	last     []DecisionEvent // ring of lastN
	lastNext int
}

const lastN = 12

// note keeps a committed decision for the live view's thumbnails.
func (s *camStats) note(d DecisionEvent) {
	if len(s.last) < lastN {
		s.last = append(s.last, d)
	} else {
		s.last[s.lastNext] = d
	}
	s.lastNext = (s.lastNext + 1) % lastN
}

// latest returns the kept decisions, newest first.
func (s *camStats) latest() []DecisionEvent {
	out := make([]DecisionEvent, 0, len(s.last))
	for i := range len(s.last) {
		j := (s.lastNext - 1 - i + 2*lastN) % lastN
		if j < len(s.last) {
			out = append(out, s.last[j])
		}
	}
	return out
}

const statRing = 1024

func (s *camStats) init() {
	s.verdicts = map[policy.Verdict]uint64{}
	s.reasons = map[policy.Reason]uint64{}
	s.model = map[policy.Verdict]uint64{}
	s.lat = make([]time.Duration, statRing)
	s.at = make([]time.Time, statRing)
}

func (s *camStats) add(d policy.Decision, latency time.Duration, now time.Time) {
	s.parts++
	s.verdicts[d.Verdict]++
	s.reasons[d.Reason]++
	if d.Model != "" {
		s.model[d.Model]++
	}
	s.lat[s.next], s.at[s.next] = latency, now
	s.next = (s.next + 1) % statRing
	s.filled = min(s.filled+1, statRing)
}

func (s *camStats) percentiles() (p50, p99 time.Duration) {
	if s.filled == 0 {
		return 0, 0
	}
	l := slices.Clone(s.lat[:s.filled])
	slices.Sort(l)
	return l[(len(l)-1)*50/100], l[(len(l)-1)*99/100]
}

func (s *camStats) throughput(now time.Time) float64 {
	const window = 10 * time.Second
	n := 0
	var oldest time.Time
	for i := range s.filled {
		t := s.at[i]
		if now.Sub(t) <= window {
			n++
			if oldest.IsZero() || t.Before(oldest) {
				oldest = t
			}
		}
	}
	if n < 2 {
		return 0
	}
	span := now.Sub(oldest)
	if span < time.Second {
		span = time.Second
	}
	return float64(n) / span.Seconds()
}
