package output

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ConnOptions configure the verdict connection.
type ConnOptions struct {
	Broker   string // tcp://host:port, ssl://host:port
	ClientID string
	Username string
	Password string
	TLS      *tls.Config
	// Timeout bounds connecting and each publish (default 2s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Conn is the agent's MQTT connection for verdicts. It is its own
// connection, apart from the uplink's, so that a verdict never waits
// behind a burst of 50 KB training samples. It reconnects by itself; a
// publish while the broker is away fails at once (the part's record is in
// the store either way).
type Conn struct {
	c       mqtt.Client
	timeout time.Duration
}

// Dial connects to the broker. The first connection is awaited (bounded by
// Timeout); after that, paho reconnects with backoff.
func Dial(o ConnOptions) (*Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := mqtt.NewClientOptions().AddBroker(o.Broker).SetClientID(o.ClientID).
		SetUsername(o.Username).SetPassword(o.Password).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).SetKeepAlive(15 * time.Second).
		SetConnectTimeout(o.Timeout).SetWriteTimeout(o.Timeout).SetCleanSession(true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			log.Warn("mqtt verdict connection lost; reconnecting", "broker", o.Broker, "err", err)
		}).
		SetOnConnectHandler(func(mqtt.Client) { log.Info("mqtt verdict connection up", "broker", o.Broker) })
	if o.TLS != nil {
		opts.SetTLSConfig(o.TLS)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(o.Timeout) {
		// ConnectRetry keeps trying in the background: the line runs
		// without the PLC output until the broker answers.
		log.Warn("mqtt broker not reachable yet; verdicts are not published until it is", "broker", o.Broker)
	} else if err := tok.Error(); err != nil {
		c.Disconnect(0)
		return nil, fmt.Errorf("mqtt connect %s: %w", o.Broker, err)
	}
	return &Conn{c: c, timeout: o.Timeout}, nil
}

// Publish implements Publisher.
func (c *Conn) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if !c.c.IsConnectionOpen() {
		return fmt.Errorf("publish %s: not connected to the broker", topic)
	}
	tok := c.c.Publish(topic, qos, retained, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(c.timeout):
		return fmt.Errorf("publish %s: no acknowledgement within %s", topic, c.timeout)
	}
}

// Close disconnects, giving queued publishes up to 250 ms.
func (c *Conn) Close() error {
	c.c.Disconnect(250)
	return nil
}
