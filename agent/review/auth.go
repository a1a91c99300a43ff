package review

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Auth modes (config review.auth).
const (
	AuthUsers  = "users"  // accounts with bcrypt password hashes
	AuthHeader = "header" // a trusted reverse proxy names the user in a header
	AuthOpen   = "open"   // no login: anyone who can reach the port acts (demo only)
)

// Roles.
const (
	RoleInspector  = "inspector"  // reviews and labels
	RoleSupervisor = "supervisor" // also changes automation levels, promotes, rolls back
)

// Auth configures who may use the UI; it mirrors config.Review.
type Auth struct {
	// Mode is AuthUsers, AuthHeader or AuthOpen. Empty means AuthUsers:
	// nothing works without a login unless the configuration opens it.
	Mode string
	// Header is the request header a trusted proxy sets to the user's name
	// (AuthHeader; default X-Forwarded-User). The role comes from Users by
	// name (PasswordHash unused), else inspector.
	Header string
	Users  []User
	// SessionKey signs session and CSRF cookies (at least 32 bytes of
	// secret advised). Empty: a random key, so sessions end on restart.
	SessionKey string
	// SessionTTL is how long a login lasts (default 12h: a shift and more).
	SessionTTL time.Duration
	// SecureCookies forces the Secure attribute. Otherwise cookies are
	// Secure when the request came over TLS or through a proxy that says
	// X-Forwarded-Proto: https (so plain-HTTP loopback demos still work).
	SecureCookies bool
}

// User is one account (config review.users).
type User struct {
	Name         string
	Role         string // RoleInspector or RoleSupervisor
	PasswordHash string // bcrypt, from `linesight user hash`
}

// identity is who is making a request.
type identity struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

func (id identity) supervisor() bool { return id.Role == RoleSupervisor }

const (
	sessionCookie = "ls_session"
	csrfCookie    = "ls_csrf"
	csrfHeader    = "X-CSRF-Token"
)

// authenticator checks logins, signs and verifies cookies, and rate-limits
// failed logins. It holds no package-level state: one per Server.
type authenticator struct {
	mode      string
	header    string
	users     map[string]User
	key       []byte
	ephemeral bool // key generated at start: sessions end on restart
	ttl       time.Duration
	secure    bool
	now       func() time.Time
	limiter   *loginLimiter
	dummyHash []byte // compared against for unknown users (same cost as a real check)
}

func newAuthenticator(a Auth, now func() time.Time) (*authenticator, error) {
	au := &authenticator{mode: a.Mode, header: a.Header, users: map[string]User{}, ttl: a.SessionTTL,
		secure: a.SecureCookies, now: now, limiter: newLoginLimiter(now)}
	if au.mode == "" {
		au.mode = AuthUsers
	}
	switch au.mode {
	case AuthUsers, AuthHeader, AuthOpen:
	default:
		return nil, fmt.Errorf("review auth %q: want users, header or open", a.Mode)
	}
	if au.header == "" {
		au.header = "X-Forwarded-User"
	}
	if au.ttl <= 0 {
		au.ttl = 12 * time.Hour
	}
	for i, u := range a.Users {
		if u.Name == "" {
			return nil, fmt.Errorf("review user %d: empty name", i)
		}
		if u.Role != RoleInspector && u.Role != RoleSupervisor {
			return nil, fmt.Errorf("review user %s: role %q: want inspector or supervisor", u.Name, u.Role)
		}
		if au.mode == AuthUsers {
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				return nil, fmt.Errorf("review user %s: password_hash is not a bcrypt hash (make one with `linesight user hash`): %w", u.Name, err)
			}
		}
		au.users[u.Name] = u
	}
	if a.SessionKey != "" {
		au.key = []byte(a.SessionKey)
	} else {
		au.key = make([]byte, 32)
		if _, err := rand.Read(au.key); err != nil {
			return nil, fmt.Errorf("session key: %w", err)
		}
		au.ephemeral = true
	}
	// Unknown names are checked against a hash of the same cost as the
	// accounts', so a wrong name takes as long as a wrong password.
	cost := bcrypt.DefaultCost
	for _, u := range au.users {
		if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil {
			cost = c
			break
		}
	}
	h, err := bcrypt.GenerateFromPassword([]byte("not a password"), cost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	au.dummyHash = h
	return au, nil
}

// sessionData is what the session cookie carries (signed, not encrypted:
// it holds nothing secret).
type sessionData struct {
	Name string `json:"n"`
	Role string `json:"r"`
	Exp  int64  `json:"e"` // unix seconds
}

func (a *authenticator) sign(kind string, payload []byte) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *authenticator) verify(kind, v string) ([]byte, bool) {
	p, s, ok := strings.Cut(v, ".")
	if !ok {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(payload)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return nil, false
	}
	return payload, true
}

func (a *authenticator) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   a.secure || r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"}
}

// identify returns the request's user, or false when it has none.
func (a *authenticator) identify(r *http.Request) (identity, bool) {
	switch a.mode {
	case AuthHeader:
		name := strings.TrimSpace(r.Header.Get(a.header))
		if name == "" {
			return identity{}, false
		}
		role := RoleInspector
		if u, ok := a.users[name]; ok {
			role = u.Role
		}
		return identity{Name: name, Role: role}, true
	}
	c, err := r.Cookie(sessionCookie)
	if err == nil {
		if p, ok := a.verify("session", c.Value); ok {
			var s sessionData
			if json.Unmarshal(p, &s) == nil && a.now().Unix() < s.Exp {
				if a.mode == AuthOpen {
					return identity{Name: s.Name, Role: RoleSupervisor}, true
				}
				// The account must still exist with that role.
				if u, ok := a.users[s.Name]; ok && u.Role == s.Role {
					return identity{Name: s.Name, Role: s.Role}, true
				}
			}
		}
	}
	return identity{}, false
}

// startSession sets the session cookie for name.
func (a *authenticator) startSession(w http.ResponseWriter, r *http.Request, id identity) {
	p, _ := json.Marshal(sessionData{Name: id.Name, Role: id.Role, Exp: a.now().Add(a.ttl).Unix()})
	http.SetCookie(w, a.cookie(r, sessionCookie, a.sign("session", p), int(a.ttl/time.Second)))
}

func (a *authenticator) endSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, a.cookie(r, sessionCookie, "", -1))
}

// checkPassword reports whether name/password is a valid account. It costs
// one bcrypt comparison whether or not the user exists.
func (a *authenticator) checkPassword(name, password string) (identity, bool) {
	u, ok := a.users[name]
	hash := a.dummyHash
	if ok {
		hash = []byte(u.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		return identity{}, false
	}
	return identity{Name: u.Name, Role: u.Role}, true
}

// csrfToken returns the request's CSRF token, setting a fresh CSRF cookie
// when it has none. The cookie holds a random nonce (signed); the token is
// an HMAC of it, which a page on another origin can neither read nor make.
func (a *authenticator) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil {
		if nonce, ok := a.verify("csrf", c.Value); ok {
			return a.tokenFor(nonce)
		}
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	http.SetCookie(w, a.cookie(r, csrfCookie, a.sign("csrf", nonce), 0))
	return a.tokenFor(nonce)
}

func (a *authenticator) tokenFor(nonce []byte) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("csrf-token\x00"))
	m.Write(nonce)
	return hex.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies the X-CSRF-Token header against the CSRF cookie.
func (a *authenticator) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil {
		return false
	}
	nonce, ok := a.verify("csrf", c.Value)
	if !ok {
		return false
	}
	got := r.Header.Get(csrfHeader)
	return got != "" && hmac.Equal([]byte(got), []byte(a.tokenFor(nonce)))
}

// guestName makes a name for an open-mode browser that gave none.
func guestName() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "guest-" + hex.EncodeToString(b)
}

// loginLimiter allows a few failed logins per user name (5) and per client
// address (20: a shop-floor kiosk or proxy serves many people) in a window,
// then refuses until the window has passed.
type loginLimiter struct {
	mu     sync.Mutex
	now    func() time.Time
	maxIP  int
	maxMe  int
	window time.Duration
	fails  map[string][]time.Time
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, maxIP: 20, maxMe: 5, window: time.Minute, fails: map[string][]time.Time{}}
}

func (l *loginLimiter) keys(r *http.Request, name string) []string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return []string{"ip:" + host, "user:" + name}
}

// allow returns how long to wait before another attempt (0: go ahead).
func (l *loginLimiter) allow(keys []string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		f := l.prune(k, now)
		limit := l.maxMe
		if strings.HasPrefix(k, "ip:") {
			limit = l.maxIP
		}
		if len(f) >= limit {
			if w := f[0].Add(l.window).Sub(now); w > wait {
				wait = w
			}
		}
	}
	return wait
}

func (l *loginLimiter) fail(keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		l.fails[k] = append(l.prune(k, now), now)
	}
	if len(l.fails) > 10000 { // bound memory under a spray of names
		for k := range l.fails {
			if len(l.prune(k, now)) == 0 {
				delete(l.fails, k)
			}
		}
	}
}

func (l *loginLimiter) prune(k string, now time.Time) []time.Time {
	f := l.fails[k]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, k)
		return nil
	}
	l.fails[k] = f
	return f
}
