package wire

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Model rollout messages (sync/rollout signs and serves them; the device's
// agent/lifecycle consumes them). They travel in the same Envelope as every
// other message.
//
//	fleet → device  linesight/v1/<site>/<device>/model/offer          ModelOffer (QoS 1, retained)
//	fleet → group   linesight/v1/<site>/groups/<group>/model/offer    ModelOffer (QoS 1, retained)
//	device → fleet  linesight/v1/<site>/<device>/model/request        ModelRequest: chunks it lacks
//	fleet → device  linesight/v1/<site>/<device>/model/chunk          ModelChunk (QoS 1), answering a request
//	device → fleet  linesight/v1/<site>/<device>/model/state          ModelState
//
// The transfer is pulled by the device: it asks for the chunks it lacks,
// a window at a time, and asks again for those that do not arrive, so a
// transfer resumes after a lost link or a restart and a group offer costs
// the fleet only what each device still needs.

// Message types of the model rollout.
const (
	TypeModelOffer   = "model.offer"
	TypeModelChunk   = "model.chunk"
	TypeModelRequest = "model.request"
	TypeModelState   = "model.state"
)

// KindModelRequest is the up-link kind on which a device asks for chunks.
const KindModelRequest Kind = "model/request"

// GroupsSegment is the reserved device segment under which group topics
// live: no device may be named "groups".
const GroupsSegment = "groups"

// Model message limits. A chunk's data is base64 in JSON, so MaxChunkData
// keeps a chunk envelope under MaxMessage.
const (
	MaxChunkData    = 160 << 10
	MaxRequestChunk = 256 // chunk indexes in one ModelRequest
	MaxOfferURL     = 2048
)

// GroupTopic builds a group's topic of kind k (only model/offer is used).
func GroupTopic(site, group string, k Kind) string {
	return Root + "/" + site + "/" + GroupsSegment + "/" + group + "/" + string(k)
}

// ModelAddress is a parsed model topic: a device's or a group's.
type ModelAddress struct {
	Site   string
	Device string // empty for a group topic
	Group  string // empty for a device topic
	Kind   Kind
}

// ParseModelTopic parses the model topics above (ParseTopic covers the
// device-wide ones too, but not requests or groups).
func ParseModelTopic(topic string) (ModelAddress, error) {
	rest, ok := strings.CutPrefix(topic, Root+"/")
	if !ok {
		return ModelAddress{}, fmt.Errorf("%w: %q does not start with %s/", ErrTopic, topic, Root)
	}
	seg := strings.Split(rest, "/")
	var a ModelAddress
	switch {
	case len(seg) == 4 && seg[2] == "model":
		a = ModelAddress{Site: seg[0], Device: seg[1], Kind: Kind("model/" + seg[3])}
		if a.Device == GroupsSegment || !ValidID(a.Device) {
			return ModelAddress{}, fmt.Errorf("%w: %q: bad device", ErrTopic, topic)
		}
	case len(seg) == 5 && seg[1] == GroupsSegment && seg[3] == "model":
		a = ModelAddress{Site: seg[0], Group: seg[2], Kind: Kind("model/" + seg[4])}
		if !ValidID(a.Group) || a.Kind != KindModelOffer {
			return ModelAddress{}, fmt.Errorf("%w: %q: bad group topic", ErrTopic, topic)
		}
	default:
		return ModelAddress{}, fmt.Errorf("%w: %q is not a model topic", ErrTopic, topic)
	}
	if !ValidID(a.Site) {
		return ModelAddress{}, fmt.Errorf("%w: %q: bad site", ErrTopic, topic)
	}
	switch a.Kind {
	case KindModelOffer, KindModelChunk, KindModelRequest, KindModelState:
	default:
		return ModelAddress{}, fmt.Errorf("%w: %q: unknown model kind %q", ErrTopic, topic, a.Kind)
	}
	return a, nil
}

// ModelOffer is a signed model release (see sync/rollout.Release) on
// offer. Release holds the exact bytes that were signed; it is verified as
// received, never re-encoded. URL, when set, is where the package's files
// can be fetched over HTTP(S) (URL + "/" + file path, with Range requests)
// instead of as chunks; it is not signed because the content is.
type ModelOffer struct {
	Release   json.RawMessage `json:"release"`
	KeyID     string          `json:"key_id"`
	Signature []byte          `json:"signature"` // ed25519, base64 in JSON
	URL       string          `json:"url,omitempty"`
}

// ModelRequest asks the fleet for chunks of an offer.
type ModelRequest struct {
	Offer  string `json:"offer"`
	Chunks []int  `json:"chunks"`
}

// ModelChunk is one piece of an offered model; SHA256 is the chunk's
// (the device checks it against the signed release, not against this field,
// which only tells transport damage from a wrong chunk in logs).
type ModelChunk struct {
	Offer  string `json:"offer"`
	Index  int    `json:"index"`
	Data   []byte `json:"data"`
	SHA256 string `json:"sha256"`
}

// Model lifecycle states in ModelState.State.
const (
	ModelReceived    = "received"    // offer verified, waiting to download
	ModelDownloading = "downloading" // chunks arriving (Have of Total)
	ModelVerifying   = "verifying"   // assembled; checking, loading, health check
	ModelShadow      = "shadow"      // running beside the active model
	ModelActive      = "active"      // serving (after promotion, or at start)
	ModelProbation   = "probation"   // promoted, watched for errors and latency
	ModelRejected    = "rejected"    // refused; Error and Code say why; the active model serves on
	ModelRolledBack  = "rolled-back" // was active, the previous version serves again
)

// ModelState is the device's model lifecycle report on model/state.
type ModelState struct {
	State    string   `json:"state"`
	Offer    string   `json:"offer,omitempty"`
	Model    ModelRef `json:"model,omitzero"`    // the version the state is about
	Active   ModelRef `json:"active,omitzero"`   // the version serving now
	Previous ModelRef `json:"previous,omitzero"` // what a rollback returns to
	// Code is a stable error name (corrupt-chunk, signature, unknown-key,
	// older-version, too-large, does-not-fit, unhealthy, ...); Error the message.
	Code   string       `json:"code,omitempty"`
	Error  string       `json:"error,omitempty"`
	Have   int          `json:"have,omitempty"`
	Total  int          `json:"total,omitempty"`
	Shadow *ShadowStats `json:"shadow,omitempty"`
}

// ShadowStats compare a candidate with the active model on live frames.
type ShadowStats struct {
	Frames           int     `json:"frames"`
	Agreement        float64 `json:"agreement"`         // share with the same label
	ActiveLatencyMS  float64 `json:"active_latency_ms"` // mean
	ShadowLatencyMS  float64 `json:"shadow_latency_ms"` // mean
	LatencyRatio     float64 `json:"latency_ratio"`     // shadow / active
	ActiveAutomation float64 `json:"active_automation"` // share decided automatically
	ShadowAutomation float64 `json:"shadow_automation"` // would-be share
	Errors           int     `json:"errors"`            // candidate failures
}

// DecodeModelOffer decodes an offer and checks its shape (not its
// signature: that is sync/rollout.Verify's job).
func DecodeModelOffer(data []byte) (Envelope, ModelOffer, error) {
	var o ModelOffer
	e, err := decodeBody(data, TypeModelOffer, &o)
	if err != nil {
		return e, o, err
	}
	switch {
	case len(o.Release) == 0 || o.Release[0] != '{':
		err = fmt.Errorf("decode model offer: %w: release is not an object", ErrMalformed)
	case o.KeyID == "" || len(o.KeyID) > 128:
		err = fmt.Errorf("decode model offer: %w: key_id", ErrMalformed)
	case len(o.Signature) != 64:
		err = fmt.Errorf("decode model offer: %w: signature of %d bytes (ed25519: 64)", ErrMalformed, len(o.Signature))
	case len(o.URL) > MaxOfferURL || (o.URL != "" && !strings.HasPrefix(o.URL, "https://") && !strings.HasPrefix(o.URL, "http://")):
		err = fmt.Errorf("decode model offer: %w: url must be http(s)", ErrMalformed)
	}
	return e, o, err
}

// DecodeModelRequest decodes a chunk request.
func DecodeModelRequest(data []byte) (Envelope, ModelRequest, error) {
	var r ModelRequest
	e, err := decodeBody(data, TypeModelRequest, &r)
	if err != nil {
		return e, r, err
	}
	if !validRecordID(r.Offer) || len(r.Offer) > 64 {
		return e, r, fmt.Errorf("decode model request: %w: offer %q", ErrMalformed, r.Offer)
	}
	if len(r.Chunks) == 0 || len(r.Chunks) > MaxRequestChunk {
		return e, r, fmt.Errorf("decode model request: %w: %d chunks (1..%d)", ErrMalformed, len(r.Chunks), MaxRequestChunk)
	}
	for _, k := range r.Chunks {
		if k < 0 {
			return e, r, fmt.Errorf("decode model request: %w: chunk %d", ErrMalformed, k)
		}
	}
	return e, r, nil
}

// DecodeModelChunk decodes a chunk and checks its sha256 field against its
// data (ErrChecksum): transport damage shows here, before the signed check.
func DecodeModelChunk(data []byte) (Envelope, ModelChunk, error) {
	var c ModelChunk
	e, err := decodeBody(data, TypeModelChunk, &c)
	if err != nil {
		return e, c, err
	}
	switch {
	case !validRecordID(c.Offer) || len(c.Offer) > 64:
		err = fmt.Errorf("decode model chunk: %w: offer %q", ErrMalformed, c.Offer)
	case c.Index < 0:
		err = fmt.Errorf("decode model chunk: %w: index %d", ErrMalformed, c.Index)
	case len(c.Data) == 0 || len(c.Data) > MaxChunkData:
		err = fmt.Errorf("decode model chunk: %w: %d bytes (1..%d)", ErrTooLarge, len(c.Data), MaxChunkData)
	case SHA256(c.Data) != c.SHA256:
		err = fmt.Errorf("decode model chunk %d: %w", c.Index, ErrChecksum)
	}
	return e, c, err
}

// NewModelChunk makes a chunk message body with its sha256.
func NewModelChunk(offer string, index int, data []byte) ModelChunk {
	return ModelChunk{Offer: offer, Index: index, Data: data, SHA256: SHA256(data)}
}

// DecodeModelState decodes a lifecycle report.
func DecodeModelState(data []byte) (Envelope, ModelState, error) {
	var s ModelState
	e, err := decodeBody(data, TypeModelState, &s)
	if err != nil {
		return e, s, err
	}
	switch s.State {
	case ModelReceived, ModelDownloading, ModelVerifying, ModelShadow, ModelActive, ModelProbation, ModelRejected, ModelRolledBack:
	default:
		return e, s, fmt.Errorf("decode model state: %w: state %q", ErrMalformed, s.State)
	}
	return e, s, nil
}
