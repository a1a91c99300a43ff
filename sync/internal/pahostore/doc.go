// Package pahostore is the paho session store that the edge uplink and the
// fleet collector share: paho's own MemoryStore races with its writer
// goroutine when a persistent session resumes; this one keeps its own copy
// of every packet (a PUBLISH's payload, never written to, stays shared), so
// no packet struct is shared.
package pahostore
