// Package review is the operator side of the agent: the web UI where
// inspectors label the parts the model deferred, the live view of the line,
// supervisor controls, and the JSON API under /api/v1 that the UI uses.
// The same HTTP server carries /healthz, /readyz and Prometheus /metrics.
//
// # Lifecycle
//
// Open binds the listener and serves; Addr gives the bound address (port 0
// picks a free one); Close stops accepting, lets requests in flight finish
// (bounded by the context given), and returns.
//
// # Caveats
//
// This first cut serves a status page; the review queue, labelling, auth
// and live view land with issue 7.
package review
