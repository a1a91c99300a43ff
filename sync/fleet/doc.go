// Package fleet is the cloud side of LineSight: it subscribes to every
// device's MQTT topics, keeps the device registry, collects the inspectors'
// labelled samples into a training dataset, and publishes signed models to
// devices (shadow, canary, all) and rolls them back.
//
// It is pure Go and imports nothing from agent, camera or inference, so
// linesight-fleet builds with CGO_ENABLED=0.
//
// # Caveats
//
// This first cut holds the configuration; the collector, registry and
// model publisher land with issue 8.
package fleet
