package uplink

import (
	"bytes"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyStore is paho's memory store, except that Get returns a copy of the
// packet. paho's resume (run on every connection of a persistent session)
// sets the DUP flag on the packets it reads from the store while its
// writer goroutine may be sending the very same packet, a data race on the
// shared pointer; a copy has no sharing.
type copyStore struct{ *paho.MemoryStore }

func newCopyStore() paho.Store { return copyStore{paho.NewMemoryStore()} }

func (s copyStore) Get(key string) packets.ControlPacket {
	p := s.MemoryStore.Get(key)
	if p == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		return nil
	}
	cp, err := packets.ReadPacket(&buf)
	if err != nil {
		return nil
	}
	return cp
}
