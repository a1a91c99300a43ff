// Package uplink is the edge end of the MQTT link: it drains the store's
// outbox to the fleet, publishes the device's status and telemetry, and hands
// down-link commands to the agent.
//
//	store outbox ──Pending──▶ Uplink ──QoS 1──▶ broker ──▶ fleet collector
//	store.Ack ◀── ack queue ◀── linesight/v1/<site>/<device>/ack ◀──┘
//
// An outbox entry leaves the store only when the collector's application
// acknowledgement naming its ID arrives on the device's ack topic; a PUBACK
// only says the broker has it. Entries are published in commit order, at
// most Options.Window un-acknowledged at a time and at most Options.DrainRate
// per second, so a long backlog never starves the agent's live decisions
// (published through Publish on the same connection, outside the limit).
// What is not acknowledged within Options.AckTimeout, and everything after a
// reconnect, is sent again from the oldest pending entry; the collector
// de-duplicates by ID.
//
// An acknowledged entry leaves the window at once; a committer goroutine
// removes everything acknowledged meanwhile from the store in one
// transaction (one fsync), so the disk's sync does not hold the drain.
//
// Labels become samples: the label, the inspection record and its JPEG
// (read for a whole batch with the store's Samples) in one wire.Sample,
// sent as a wire sample frame once the collector's acks say it takes them
// (Ack.Accept), and as a JSON envelope until then and again after every
// reconnect or ack timeout, so an older collector always gets JSON.
//
// # Lifecycle
//
// New checks the options; Handle registers extra down-link handlers (the
// model lifecycle's offers); Open connects (retrying in the background, so
// a device starts offline just fine) and starts the drain, commit,
// telemetry and dispatch goroutines; Close publishes status "offline", disconnects and
// waits for them. Open the store first and close it after the uplink.
//
// # Caveats
//
// Message handlers never run on paho's goroutines: paho's callbacks only
// append to unbounded queues that goroutines of this package drain, so a
// slow agent cannot stall acknowledgements or keepalives. The session is
// persistent (CleanSession false): acks and commands sent while the device
// was offline are delivered on reconnect, for as long as the broker keeps
// the session.
package uplink
