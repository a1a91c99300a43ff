// Package loop holds the parts of LineSight's closed loop that are not the
// agent itself: it is what `linesight demo --loop` (agent/cmd/linesight,
// loop.go) and its test drive around a running line to show that the
// inspectors' labels make the next model better.
//
//	synthetic line ─▶ Tag (part ID = generator seed and index) ─▶ pipeline ─▶ store ─▶ review API
//	                                                                                    │
//	Inspector (HTTP client: login, next, label with Truth(part ID)) ◀────────────────────┘
//	store outbox ─▶ uplink ─▶ MQTT ─▶ Fleet: fleet.Collector ─▶ dataset/CLASS/ID.jpg + manifest.jsonl
//	MergeTrainingSet(base set + collected labels) ─▶ Train (scripts/train/train.py) ─▶ new package
//	Fleet.Push (signed, shadow) ─▶ device lifecycle: shadow ─▶ Fleet.Promote (cmd topic) ─▶ active
//	Measure: thresholds calibrated on a fresh synthetic validation set at the
//	escape target, automation and escapes on a fresh test set, before and after.
//
// The ground truth reaches only the simulated inspector: Tag gives each
// synthetic frame a part ID (as a barcode would on a real line), and Truth
// regenerates that part's class from the generator, which is
// deterministic in its seed and index. The model sees only pixels.
//
// # Lifecycle
//
// OpenInspector and OpenFleet start long-lived parts; Close stops each and
// waits for its goroutines. Train runs one training process and returns
// when it exits (or kills it when ctx ends). Measure and Calibrate are
// plain functions.
//
// # Caveats
//
// Measure scores generator frames as the line's camera delivers them (8-bit
// gray, no JPEG round trip), with the policy's partial-level rule; it knows
// nothing of the line's image guardrails (brightness, blur), which the
// synthetic line never trips.
package loop
