package pahostore

import (
	"bytes"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyStore is paho's in-memory session store, keeping its own copy of
// each packet: paho's own MemoryStore keeps the pointer, and paho's resume
// (on every connection of a persistent session) then marks and re-encodes
// the packet the writer goroutine may be sending at the same time: a data
// race on the shared packet. Here no packet struct is shared: Put keeps a
// copy and Get hands out a fresh one.
//
// A PUBLISH is copied field by field and keeps sharing its payload, which
// nothing writes to after the packet is built (paho reads it to encode;
// the uplink and the collector only read it); copying or encoding 68 KB
// samples on every Put cost more CPU than the rest of paho's work on them.
// Other packets are small and kept as the bytes they encode to.
type copyStore struct {
	mu  sync.Mutex
	m   map[string]entry
	off bool
}

// entry is one stored packet: a PUBLISH copy, or another packet's bytes.
type entry struct {
	pub *packets.PublishPacket
	raw []byte
}

// Copy returns a new copying session store for paho.ClientOptions.SetStore.
func Copy() paho.Store { return &copyStore{m: map[string]entry{}} }

func (s *copyStore) Open() {
	s.mu.Lock()
	s.off = false
	s.mu.Unlock()
}

func (s *copyStore) Put(key string, p packets.ControlPacket) {
	var e entry
	if pub, ok := p.(*packets.PublishPacket); ok {
		cp := *pub
		e.pub = &cp
	} else {
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			return
		}
		e.raw = buf.Bytes()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.off {
		s.m[key] = e
	}
}

func (s *copyStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	e, ok := s.m[key]
	s.mu.Unlock()
	switch {
	case !ok:
		return nil
	case e.pub != nil:
		cp := *e.pub
		return &cp
	}
	p, err := packets.ReadPacket(bytes.NewReader(e.raw))
	if err != nil {
		return nil
	}
	return p
}

func (s *copyStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	return keys
}

func (s *copyStore) Del(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (s *copyStore) Close() {
	s.mu.Lock()
	s.off = true
	s.mu.Unlock()
}

func (s *copyStore) Reset() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}
