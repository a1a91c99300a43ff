package pahostore

import (
	"bytes"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyStore is paho's in-memory session store, keeping each packet as the
// bytes it encodes to: Put serialises the packet (paho calls it before the
// packet is handed to the writer goroutine) and Get decodes a fresh copy.
// paho's own MemoryStore keeps the pointer, and paho's resume (on every
// connection of a persistent session) then marks and re-encodes the packet
// the writer goroutine may be sending at the same time: a data race on
// the shared packet. Here nothing is shared.
type copyStore struct {
	mu  sync.Mutex
	m   map[string][]byte
	off bool
}

// Copy returns a new copying session store for paho.ClientOptions.SetStore.
func Copy() paho.Store { return &copyStore{m: map[string][]byte{}} }

func (s *copyStore) Open() {
	s.mu.Lock()
	s.off = false
	s.mu.Unlock()
}

func (s *copyStore) Put(key string, p packets.ControlPacket) {
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.off {
		s.m[key] = buf.Bytes()
	}
}

func (s *copyStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	b, ok := s.m[key]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	p, err := packets.ReadPacket(bytes.NewReader(b))
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
