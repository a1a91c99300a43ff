// Package output delivers each part's verdict to the things that act on it
// or keep it: an MQTT topic per camera for the PLC and the reject gate, an
// HTTP webhook, and a local JSON-lines file.
//
// The line must never wait for an output. A Dispatcher gives every output
// its own bounded queue and goroutine: Send only enqueues, and when an
// output is slow or down its queue fills and further messages for it are
// dropped and counted (never the others'). Messages for the PLC are only
// sent when the policy says the verdict drives the line (Actuate); shadow,
// human and assist decisions are written to the JSON-lines file only, so
// a shadow model never moves a gate.
//
// The store, not an output, is the record of every decision: the pipeline
// sends a Message after its inspection committed, and the uplink delivers
// decisions to the cloud from the store's outbox.
package output
