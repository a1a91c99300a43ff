// Package camera is the first stage of the LineSight pipeline: it turns
// USB cameras, network streams, video files, image folders and the
// synthetic tile line into Frames for inference.
//
//	camera.Source ──Frame──▶ Queue ──Camera.Next──▶ inference.Engine
//
// A camera is configured by a Spec (plain data, validated with
// Spec.Validate). OpenSource turns a Spec into a Source (device, url, file,
// folder or synthetic). Open wraps a Source in a Camera, the long-lived
// part the pipeline uses: it captures free-running at trigger.fps or once
// per triggered part, crops to the ROI and rotates, and queues frames with
// the camera's queue policy. Triggers arrive through Camera.Trigger, from
// TriggerHandler (HTTP) or MQTTTrigger (MQTT).
//
// The synthetic line is a pure-Go Generator of magnetic-tile images with
// pixel masks for six classes (free, blowhole, break, crack, fray,
// uneven); `linesight synth` writes it out as a dataset.
//
// # Lifecycle
//
// Open starts a Camera's capture goroutine; Close stops it and waits for
// it. After Close, Next returns the frames still queued, then ErrClosed, so
// nothing already captured is lost; Discard releases them instead. Every
// Frame has one owner, who calls Close on it: Source.Read and Camera.Next
// hand ownership to the caller, Queue.Push takes it.
//
// # Robustness
//
// A device or stream that fails (unplugged, network down) or stalls (no
// frame within stall_timeout) is reported with an Event and counted in
// Stats, then reopened with capped exponential backoff (retry.initial up to
// retry.max) without restarting the process. Frames that fail to decode
// are counted and skipped. Free-running cameras drop the oldest queued
// frame when inference falls behind; triggered parts are never dropped: a
// part that cannot be captured or inspected in time is passed on with
// Frame.Late set so the policy gives it the fail-safe verdict.
//
// # Caveats
//
// OpenCV capture calls cannot be interrupted. A stream that hangs inside
// FFmpeg is abandoned by the watchdog at once, but its goroutine (and
// Close) waits until FFmpeg's own timeout (30 s by default) returns it.
// OpenCV does not tell a corrupt frame in a stream from the stream's end:
// FFmpeg skips undecodable packets itself, and a failed read of a live
// source is treated as an outage.
package camera
