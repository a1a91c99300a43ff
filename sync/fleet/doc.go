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
// collector keeps the whole registry). Its paho callback only queues; a
// worker takes batches, updates the registry and decodes the samples (JSON
// envelopes or sample frames); a writer writes everything decoded so far
// into the Dataset (each image: temp file and rename, a few at a time; one
// syncfs for the whole batch; then one append and fsync of manifest.jsonl)
// and only then publishes one wire.Ack per device, which also says that
// this collector takes sample frames. A sample already in the manifest (by message ID) is acknowledged
// again and not written; a correction (a higher revision) moves the item's
// file to its new class; an older revision arriving late only gets its line.
// Handler serves the read-only status page and JSON API.
//
// # Caveats
//
// Several collectors may share one dataset directory (a local disk or a
// file system with working flock): writes hold the manifest's flock and
// first read the lines others appended. The dataset directory is marked
// chattr +T where the file system allows (see spreadClasses: on a
// journal-less ext4 it keeps each create from paying for files others
// deleted). Collectors sharing a $share group should run the same version:
// a device that was told frames are taken falls back to JSON only after
// its ack timeout when one of them cannot read them.
package fleet
