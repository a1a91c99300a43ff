package output

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Webhook POSTs each actuating verdict as JSON to a URL (e.g. a line
// controller's HTTP endpoint), with an optional bearer token.
type Webhook struct {
	url, token string
	timeout    time.Duration
	client     *http.Client
}

// NewWebhook makes a webhook output; timeout bounds each request (default 2s).
func NewWebhook(url, token string, timeout time.Duration) *Webhook {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Webhook{url: url, token: token, timeout: timeout, client: &http.Client{Timeout: timeout}}
}

// Name implements Output.
func (w *Webhook) Name() string { return "webhook" }

// Actuating implements Output.
func (w *Webhook) Actuating() bool { return true }

// Send implements Output.
func (w *Webhook) Send(ctx context.Context, m *Message) error {
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("webhook: encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "linesight")
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: %s answered %s", w.url, resp.Status)
	}
	return nil
}

// Close implements Output.
func (w *Webhook) Close() error {
	w.client.CloseIdleConnections()
	return nil
}
