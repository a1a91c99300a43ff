// Package fleet is the cloud side of LineSight: it subscribes to every
// device's MQTT topics, keeps the device registry, collects the inspectors'
// labelled samples into a training dataset, and publishes signed models to
// devices (shadow, canary, all) and rolls them back.
//
// It is pure Go and imports nothing from agent, camera or inference, so
// linesight-fleet builds with CGO_ENABLED=0.
//
// # Collector
//
// OpenCollector subscribes to every device's up-link topics (samples,
// events and decisions through $share/<group>/... when a shared group is
// set; status, telemetry and model/state always unshared, so every
// collector keeps the whole registry). Its paho callback only queues; one
// worker takes batches: it updates the registry, writes the batch's samples
// into the Dataset (each image: temp file, fsync, rename; then one append
// and fsync of manifest.jsonl), and only then publishes one wire.Ack per
// device. A sample already in the manifest (by message ID) is acknowledged
// again and not written; a correction (a higher revision) moves the item's
// file to its new class; an older revision arriving late only gets its line.
// Handler serves the read-only status page and JSON API.
//
// # Caveats
//
// Several collectors may share one dataset directory (a local disk or a
// file system with working flock): writes hold the manifest's flock and
// first read the lines others appended.
package fleet
