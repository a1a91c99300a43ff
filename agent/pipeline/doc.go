// Package pipeline runs a line device's inspection: for every camera it
// takes frames from the camera, runs the model, asks the policy what to do,
// commits the inspection to the store and sends the verdict to the outputs,
// while it keeps the per-camera statistics, drift monitor and Prometheus
// metrics that the review UI, the uplink and /metrics read.
//
// The flow, its queues and the order of shutdown are drawn at the top of
// pipeline.go. The pipeline owns no model, store or output: the agent opens
// them before it and closes them after it. It does own the cameras it is
// given (it closes them first when it stops).
package pipeline
