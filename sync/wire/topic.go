package wire

import (
	"fmt"
	"strings"
)

// Root is the first two segments of every LineSight topic.
const Root = "linesight/v1"

// Kind names the part of a topic after linesight/v1/<site>/<device>/ (and,
// for per-camera topics, after <camera>/).
type Kind string

// Up-link kinds: the device publishes them.
const (
	KindStatus     Kind = "status"      // retained Status; last will State "offline"
	KindTelemetry  Kind = "telemetry"   // Telemetry every few seconds
	KindEvents     Kind = "events"      // Event (alarms, state changes)
	KindSamples    Kind = "samples"     // Sample: a labelled image for retraining
	KindDecisions  Kind = "decisions"   // per camera: Decision
	KindModelState Kind = "model/state" // the device's model lifecycle state
)

// Down-link kinds: the fleet (or a PLC, for triggers) publishes them.
const (
	KindCommand    Kind = "cmd"         // Command: automation level, trigger, rollback
	KindConfig     Kind = "config"      // Config: settings pushed by the fleet
	KindAck        Kind = "ack"         // Ack: the collector has what these IDs named
	KindModelOffer Kind = "model/offer" // a signed model offer
	KindModelChunk Kind = "model/chunk" // a piece of an offered model
	KindTrigger    Kind = "trigger"     // per camera: a part trigger (camera package)
)

// Up reports whether the device publishes this kind.
func (k Kind) Up() bool {
	switch k {
	case KindStatus, KindTelemetry, KindEvents, KindSamples, KindDecisions, KindModelState, KindModelRequest:
		return true
	}
	return false
}

// PerCamera reports whether the kind's topic carries a camera segment.
func (k Kind) PerCamera() bool { return k == KindDecisions || k == KindTrigger }

func (k Kind) known() bool {
	switch k {
	case KindStatus, KindTelemetry, KindEvents, KindSamples, KindDecisions, KindModelState,
		KindModelRequest, KindCommand, KindConfig, KindAck, KindModelOffer, KindModelChunk, KindTrigger:
		return true
	}
	return false
}

// Address is a parsed topic.
type Address struct {
	Site, Device string
	Camera       string // only for per-camera kinds
	Kind         Kind
}

// String is the topic.
func (a Address) String() string {
	if a.Kind.PerCamera() {
		return Root + "/" + a.Site + "/" + a.Device + "/" + a.Camera + "/" + string(a.Kind)
	}
	return Root + "/" + a.Site + "/" + a.Device + "/" + string(a.Kind)
}

// Topic builds the topic of a device-wide kind. It panics on a per-camera
// kind (use CameraTopic); it does not validate the segments (use ValidID
// where they come from configuration).
func Topic(site, device string, k Kind) string {
	if k.PerCamera() {
		panic("wire.Topic: " + string(k) + " is per camera; use CameraTopic")
	}
	return Address{Site: site, Device: device, Kind: k}.String()
}

// CameraTopic builds the topic of a per-camera kind (decisions, trigger).
func CameraTopic(site, device, camera string, k Kind) string {
	return Root + "/" + site + "/" + device + "/" + camera + "/" + string(k)
}

// DeviceFilter is the subscription filter for every topic of one device.
func DeviceFilter(site, device string) string { return Root + "/" + site + "/" + device + "/#" }

// UpFilters are the subscription filters that see every device's up-link
// messages; with a shared group they become $share/<group>/... so that
// several collectors split the load (each message goes to one of them).
// Status is never shared: every collector keeps the whole registry.
func UpFilters(group string) (shared []string, all []string) {
	share := func(f string) string {
		if group == "" {
			return f
		}
		return "$share/" + group + "/" + f
	}
	shared = []string{
		share(Root + "/+/+/" + string(KindSamples)),
		share(Root + "/+/+/" + string(KindEvents)),
		share(Root + "/+/+/+/" + string(KindDecisions)),
	}
	all = []string{
		Root + "/+/+/" + string(KindStatus),
		Root + "/+/+/" + string(KindTelemetry),
		Root + "/+/+/" + string(KindModelState),
	}
	return shared, all
}

// ParseTopic splits a LineSight topic. A camera may not be named "model"
// (model/<x> is the model lifecycle's namespace).
func ParseTopic(topic string) (Address, error) {
	rest, ok := strings.CutPrefix(topic, Root+"/")
	if !ok {
		return Address{}, fmt.Errorf("%w: %q does not start with %s/", ErrTopic, topic, Root)
	}
	seg := strings.Split(rest, "/")
	if len(seg) < 3 || len(seg) > 4 {
		return Address{}, fmt.Errorf("%w: %q: want %s/<site>/<device>/<kind>", ErrTopic, topic, Root)
	}
	a := Address{Site: seg[0], Device: seg[1]}
	for _, s := range seg[:2] {
		if !ValidID(s) {
			return Address{}, fmt.Errorf("%w: %q: bad segment %q", ErrTopic, topic, s)
		}
	}
	switch {
	case len(seg) == 3:
		a.Kind = Kind(seg[2])
	case seg[2] == "model":
		a.Kind = Kind("model/" + seg[3])
	default:
		a.Camera, a.Kind = seg[2], Kind(seg[3])
		if !ValidID(a.Camera) {
			return Address{}, fmt.Errorf("%w: %q: bad camera %q", ErrTopic, topic, a.Camera)
		}
		if !a.Kind.PerCamera() {
			return Address{}, fmt.Errorf("%w: %q: %q is not a per-camera kind", ErrTopic, topic, a.Kind)
		}
	}
	if !a.Kind.known() || (a.Camera == "" && a.Kind.PerCamera()) {
		return Address{}, fmt.Errorf("%w: %q: unknown kind %q", ErrTopic, topic, a.Kind)
	}
	return a, nil
}

// ValidID reports whether s may be a site, device or camera segment:
// 1-64 letters, digits, '-' or '_' (so never an MQTT wildcard or separator).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
