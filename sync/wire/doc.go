// Package wire is the MQTT contract between a line device (sync/uplink) and
// the fleet (sync/fleet): the topic tree and the versioned JSON envelopes
// that travel on it. Both ends import it; it imports nothing from agent,
// camera or inference, so the fleet binary stays pure Go.
//
// # Topics
//
// Every topic starts with linesight/v1/<site>/<device>/. Up-link (device to
// fleet): status (retained; the broker publishes the device's last will,
// state "offline", when the link drops), telemetry, events, samples,
// <camera>/decisions and model/state. Down-link (fleet to device): cmd,
// config, ack and model/offer, model/chunk; the PLC's part triggers arrive
// on <camera>/trigger. Build topics with Topic and parse them with
// ParseTopic; segments are 1-64 letters, digits, '-' or '_'.
//
// # Envelopes
//
// Every payload is an Envelope: {"v":1,"type":...,"id":...,"device":...,
// "time":...,"ack":bool,"body":{...}}. V is the wire version: a decoder
// refuses a newer major version (ErrVersion) rather than guess. An envelope
// with Ack set stays in the device's outbox until the fleet names its ID in
// an Ack. Sizes are capped per type (MaxSize) before anything is parsed.
// A Sample carries its JPEG base64-encoded in body.image.data (JSON's
// encoding of []byte) with its sha256 in body.image.sha256; DecodeSample
// checks both.
//
// # Sample frames
//
// A sample may instead travel as a frame (frame.go): a magic, a frame
// version, the same JSON envelope with body.image.data null, then the
// JPEG's raw bytes; no base64 on either end and a third fewer bytes. A
// collector that decodes frames lists AcceptSampleFrame in Ack.Accept; a
// device sends frames only after such an ack, and JSON again after every
// reconnect or ack timeout until the next one. DecodeSample takes both.
//
// Model offers and chunks (model*.go) belong to the rollout work and follow
// the same envelope.
package wire
