package output

import (
	"encoding/json"
	"time"
)

// Version of the Message payload; bumped on an incompatible change.
const Version = 1

// Message is one part's verdict as the outputs publish it (JSON).
type Message struct {
	V        int       `json:"v"`
	ID       string    `json:"id"` // inspection ID (the store's key)
	Device   string    `json:"device"`
	Camera   string    `json:"camera"`
	PartID   string    `json:"part_id,omitempty"`
	Time     time.Time `json:"time"` // capture time
	Verdict  string    `json:"verdict"`
	Reason   string    `json:"reason"`
	Detail   string    `json:"detail,omitempty"`
	Level    string    `json:"level"`
	Actuate  bool      `json:"actuate"` // the verdict drives the gate
	Review   bool      `json:"review,omitempty"`
	Top      string    `json:"top,omitempty"`
	PGood    float64   `json:"p_good"`
	Model    string    `json:"model,omitempty"`
	Version  string    `json:"model_version,omitempty"`
	Latency  float64   `json:"latency_ms"` // capture to decision
	Late     bool      `json:"late,omitempty"`
	Deadline time.Time `json:"deadline,omitzero"`
}

// Marshal is the message's JSON encoding, with V set. It does not modify m:
// one message is shared by every output's goroutine.
func (m *Message) Marshal() ([]byte, error) {
	c := *m
	c.V = Version
	return json.Marshal(&c)
}
