package output

import (
	"context"
	"fmt"
)

// Publisher sends one MQTT message; the agent's MQTT connection implements it.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// DecisionTopic is where a camera's verdicts go:
// linesight/v1/<site>/<device>/<camera>/decisions.
func DecisionTopic(site, device, camera string) string {
	return "linesight/v1/" + site + "/" + device + "/" + camera + "/decisions"
}

// MQTT publishes each actuating verdict with QoS 1 to its camera's
// decisions topic, for the PLC and the reject gate.
type MQTT struct {
	pub          Publisher
	site, device string
}

// NewMQTT makes the MQTT output on an open connection.
func NewMQTT(pub Publisher, site, device string) *MQTT {
	return &MQTT{pub: pub, site: site, device: device}
}

// Name implements Output.
func (o *MQTT) Name() string { return "mqtt" }

// Actuating implements Output.
func (o *MQTT) Actuating() bool { return true }

// Send implements Output.
func (o *MQTT) Send(ctx context.Context, m *Message) error {
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("mqtt: encode: %w", err)
	}
	if err := o.pub.Publish(ctx, DecisionTopic(o.site, o.device, m.Camera), 1, false, b); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	return nil
}

// Close implements Output; the connection belongs to its opener.
func (o *MQTT) Close() error { return nil }
