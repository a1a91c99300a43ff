package pahostore

import (
	"bytes"
	"sync"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func publish(id uint16, payload string) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.TopicName, p.MessageID, p.Payload = 1, "linesight/v1/s1/d1/samples", id, []byte(payload)
	return p
}

func encode(t *testing.T, p packets.ControlPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestStoreCopies: what Get returns is the packet Put was given, encoded
// byte for byte the same, and never the struct paho holds or another Get's.
func TestStoreCopies(t *testing.T) {
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID, sub.Topics, sub.Qoss = 7, []string{"linesight/v1/s1/d1/ack"}, []byte{1}
	for _, tc := range []struct {
		name string
		p    packets.ControlPacket
	}{
		{"publish", publish(3, "sample")},
		{"publish empty payload", publish(4, "")},
		{"subscribe", sub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Copy()
			s.Open()
			want := encode(t, tc.p)
			s.Put("o.1", tc.p)
			a, b := s.Get("o.1"), s.Get("o.1")
			if a == nil || b == nil {
				t.Fatal("Get: nil")
			}
			if a == tc.p || a == b {
				t.Fatal("Get returned a shared packet")
			}
			// paho marks a resumed PUBLISH as a duplicate: neither the
			// stored packet nor the caller's may change.
			if pa, ok := a.(*packets.PublishPacket); ok {
				pa.Dup = true
				if tc.p.(*packets.PublishPacket).Dup || b.(*packets.PublishPacket).Dup {
					t.Fatal("Dup leaked into another copy")
				}
				pa.Dup = false
			}
			if got := encode(t, a); !bytes.Equal(got, want) {
				t.Fatalf("encodes to %q, want %q", got, want)
			}
			if got := s.All(); len(got) != 1 || got[0] != "o.1" {
				t.Fatalf("All = %v", got)
			}
			s.Del("o.1")
			if s.Get("o.1") != nil || len(s.All()) != 0 {
				t.Fatal("Del left the packet")
			}
		})
	}
}

// TestStoreClosed: a closed store keeps nothing new; Reset empties it.
func TestStoreClosed(t *testing.T) {
	s := Copy()
	s.Open()
	s.Put("o.1", publish(1, "a"))
	s.Close()
	s.Put("o.2", publish(2, "b"))
	if s.Get("o.2") != nil {
		t.Fatal("closed store kept a packet")
	}
	s.Open()
	s.Reset()
	if len(s.All()) != 0 {
		t.Fatal("Reset left packets")
	}
}

// TestStoreResumeRace is what paho does on resume while its writer sends
// the same message: one goroutine encodes the packet it published (which
// sets RemainingLength), another gets the stored copy, marks it and
// encodes it. Run with -race.
func TestStoreResumeRace(t *testing.T) {
	s := Copy()
	s.Open()
	p := publish(9, "payload")
	s.Put("o.9", p)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 100 {
			_ = p.Write(&bytes.Buffer{})
		}
	}()
	go func() {
		defer wg.Done()
		for range 100 {
			q := s.Get("o.9").(*packets.PublishPacket)
			q.Dup = true
			_ = q.Write(&bytes.Buffer{})
		}
	}()
	wg.Wait()
}
