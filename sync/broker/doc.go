// Package broker runs an in-process MQTT broker (mochi-mqtt) for the demo,
// for tests, and for a single-node fleet that needs no external broker.
// Production lines normally talk to the plant's or the cloud's broker
// instead; the agent and the fleet speak plain MQTT 3.1.1 either way.
//
// # Lifecycle
//
// Open binds the listener and starts serving; Addr reports the bound
// address (useful with port 0); Close disconnects clients and stops.
//
// Pure Go: linesight-fleet builds it with CGO_ENABLED=0.
package broker
