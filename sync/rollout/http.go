package rollout

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// FetchHTTP downloads the chunks a lacks from baseURL, where the package's
// files lie (baseURL + "/" + path). It resumes: for each file it asks,
// with a Range request, from the first missing chunk on (a server that
// ignores Range sends the whole file and the held prefix is skipped).
// Every chunk is checked against the signed release as it is stored; a
// mismatch wraps ErrCorruptChunk.
func FetchHTTP(ctx context.Context, c *http.Client, baseURL string, r *Release, a *Assembler) error {
	if c == nil {
		c = http.DefaultClient
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("fetch model: url %q: want http(s)", baseURL)
	}
	spans := r.Spans()
	missing := a.Missing(0)
	done := map[int]bool{}
	for _, k0 := range missing {
		fi := spans[k0].File
		if done[fi] {
			continue
		}
		done[fi] = true
		if err := fetchFile(ctx, c, strings.TrimSuffix(baseURL, "/")+"/"+r.Files[fi].Path, spans, fi, k0, a); err != nil {
			return err
		}
	}
	if !a.Done() {
		return fmt.Errorf("fetch model from %s: %d of %d chunks: %w", baseURL, a.Have(), a.Total(), ErrIncomplete)
	}
	return nil
}

func fetchFile(ctx context.Context, c *http.Client, u string, spans []Span, fi, k0 int, a *Assembler) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", u, err)
	}
	off := spans[k0].Offset
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			return fmt.Errorf("fetch %s: %w", u, err)
		}
	default:
		return fmt.Errorf("fetch %s: %s", u, resp.Status)
	}
	if _, err := ReadChunks(a, fi, k0, body); err != nil {
		return fmt.Errorf("fetch %s: %w", u, err)
	}
	return nil
}
