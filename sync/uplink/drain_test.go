package uplink

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/sync/wire"
)

// TestDecisionOf: decision gives what decoding the record's JSON into
// wire.Decision gives (how samples carried the inspection before), byte
// for byte once encoded.
func TestDecisionOf(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	for _, tc := range []struct {
		name string
		in   store.Inspection
	}{
		{"minimal", store.Inspection{ID: "0000000000000001-abcd-00000001", Time: at, Camera: "cam1"}},
		{"deferred", store.Inspection{ID: "0000000000000001-abcd-00000002", Time: at, Camera: "cam1", PartID: "p-7",
			Model: store.ModelRef{Name: "tilenet", Version: "3"}, Top: "scratch",
			Scores:  []store.Score{{Label: "scratch", P: 0.51}, {Label: "ok", P: 0.49}},
			Verdict: policy.Defer, Reason: policy.ReasonUncertain, Level: policy.Partial, Review: true}},
		{"everything else set", store.Inspection{ID: "0000000000000001-abcd-00000003", Time: at.Add(time.Hour), Camera: "c_2",
			Verdict: policy.Pass, Level: policy.Full, ModelVerdict: policy.Reject, Audit: true, Detail: "d",
			Timings: map[string]time.Duration{"inference": time.Millisecond}, Image: "x.jpg", ImageBytes: 5,
			Heatmap: &store.Heatmap{W: 2, H: 1, V: []byte{0, 255}}, Width: 4, Height: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(&tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var want wire.Decision
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			wb, _ := json.Marshal(want)
			gb, _ := json.Marshal(decision(&tc.in))
			if !bytes.Equal(gb, wb) {
				t.Fatalf("decision\n got %s\nwant %s", gb, wb)
			}
		})
	}
}
