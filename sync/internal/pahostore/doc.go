// Package pahostore is the paho session store that the edge uplink and the
// fleet collector share: paho's own MemoryStore races with its writer
// goroutine when a persistent session resumes; this one keeps packets as
// bytes, so nothing is shared.
package pahostore
