// Package cli holds what both LineSight binaries (the edge agent
// linesight and the cloud side linesight-fleet) share at their outer edge:
// exit codes, logger construction and the usage-error type. It is pure Go so
// that linesight-fleet keeps building with CGO_ENABLED=0.
package cli
