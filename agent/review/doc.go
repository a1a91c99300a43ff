// Package review is the operator side of the agent: the web UI where
// inspectors label the parts the model deferred, the live view of the line,
// supervisor controls, and the JSON API under /api/v1 that the UI itself
// uses. The same HTTP server carries /healthz, /readyz, Prometheus /metrics
// and the plain status page /status.
//
//	store (bbolt) ──Next/Claim/Get/Image──▶ review API ──▶ browser (queue, keys 1-6, Enter, U, S)
//	      ▲                                     │
//	      └───────── Label (label + outbox, one transaction) ◀──┘
//	Line ──Cameras/Subscribe──▶ /api/v1/live, /api/v1/events (SSE) ──▶ live view
//	Line ◀──SetLevel── supervisor;  Models ◀──Shadow/Promote/Rollback── supervisor
//
// The UI is plain HTML, CSS and JavaScript embedded with go:embed: nothing
// is fetched from elsewhere (shop floors are often offline), and a strict
// Content-Security-Policy keeps it that way.
//
// # What it consumes
//
// Options.Store is the agent's store (a small Store interface that
// *store.Store implements). Options.Line is the running line, implemented by
// the pipeline:
//
//	type Line interface {
//		Cameras() []CameraStatus                                     // cheap snapshot
//		SetLevel(ctx, camera string, level policy.Level, by string) error
//		Subscribe(buffer int) (events <-chan Event, cancel func())    // never blocks the line
//	}
//
// CameraStatus carries a camera's effective and chosen level, models, counts
// by verdict, defer rate, throughput, latency p50/p99, drift state and its
// last decisions; Event is a Decision, an Alarm or a LevelEvent. Options.Models
// is the model lifecycle's Shadow/Promote/Rollback; until it exists it is nil
// and the UI says "not available yet" (an implementation may also return
// ErrNotAvailable). Any of the three may be nil; the UI says what is missing.
//
// # Review flow
//
// The page asks POST /api/v1/next for the oldest item matching its filter;
// the store leases it to the inspector (Options.LeaseFor, renewed by the page
// while the item is on screen), so two inspectors never get the same item.
// The page preloads the following item (next with exclude=[current]) and its
// image. A label goes to store.Label, which commits the label, the queue
// removal and the outbox entry in one transaction; only its answer makes the
// page say "Saved" and move on. A label on an item another inspector holds or
// already labelled is refused with 409 and their name (lease_held,
// already_labelled). S releases the lease and keeps the item out of that
// inspector's queue for ten minutes; U undoes the last label within the
// store's undo window.
//
// # Auth
//
// Auth.Mode is "users" (bcrypt hashes from `linesight user hash`; roles
// inspector and supervisor), "header" (a trusted reverse proxy names the user
// in Auth.Header; roles by name from Users) or "open" (no login; every page
// says so; the demo). The zero Auth requires a login and has no users.
// Sessions are HMAC-SHA256-signed cookies (HttpOnly, SameSite=Strict, Secure
// over TLS or behind a proxy that says https) keyed by Auth.SessionKey;
// without one a random key is made, so sessions end on restart (logged, and
// the login page says so). Every POST needs the X-CSRF-Token header that
// GET /api/v1/session hands out, bound to a signed cookie. Failed logins are
// limited to 5 a minute per name and 20 a minute per client address.
//
// # Lifecycle
//
// Open binds the listener and serves; Addr gives the bound address (port 0
// picks a free one); Close ends the event streams, stops accepting, lets
// requests in flight finish (bounded by the context given), and returns.
// Open the store before the server and close the server before the store.
//
// # Caveats
//
// Skipped items are remembered in memory per inspector (lost on restart:
// they simply come back). Queue views scan the queue bucket (fine for the
// thousands of items a queue holds). The live view's thumbnails are the
// stored images scaled by the browser.
package review
