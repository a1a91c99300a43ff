package rollout

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Key file names written by GenerateKey.
const (
	PrivateKeyFile = "fleet.key" // PKCS #8 PEM, mode 0600
	PublicKeyFile  = "fleet.pub" // PKIX PEM, mode 0644
)

// KeyID names a public key in offers: "ed25519:" and the first 16 hex
// digits of the sha256 of its 32 raw bytes.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(s[:8])
}

// GenerateKey makes a new ed25519 key pair in dir (created if needed) as
// PrivateKeyFile (mode 0600) and PublicKeyFile. It never overwrites: when
// either file exists the error wraps ErrKeyExists and nothing is written.
func GenerateKey(dir string) (privPath, pubPath string, id string, err error) {
	privPath, pubPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", "", fmt.Errorf("keys gen: %s: %w", p, ErrKeyExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", "", fmt.Errorf("keys gen: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", fmt.Errorf("keys gen: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", "", fmt.Errorf("keys gen: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", "", fmt.Errorf("keys gen: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", "", fmt.Errorf("keys gen: %w", err)
	}
	if err := writeExclusive(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", "", err
	}
	if err := writeExclusive(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath)
		return "", "", "", err
	}
	if err := syncDir(dir); err != nil {
		return "", "", "", err
	}
	return privPath, pubPath, KeyID(pub), nil
}

// writeExclusive creates path (failing if it exists), writes b and fsyncs.
func writeExclusive(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keys gen: %s: %w", path, ErrKeyExists)
		}
		return fmt.Errorf("keys gen: %w", err)
	}
	if err := f.Chmod(mode); err != nil { // the umask may have narrowed or widened nothing; be explicit
		f.Close()
		return fmt.Errorf("keys gen: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("keys gen: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keys gen: sync %s: %w", path, err)
	}
	return f.Close()
}

// LoadPrivateKey reads a PKCS #8 PEM ed25519 private key (as GenerateKey
// writes it).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load private key %s: no PRIVATE KEY PEM block: %w", path, ErrBadKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load private key %s: %v: %w", path, err, ErrBadKey)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load private key %s: %T is not ed25519: %w", path, k, ErrBadKey)
	}
	return priv, nil
}

// ParsePublicKey reads a PKIX PEM ed25519 public key.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("no PUBLIC KEY PEM block: %w", ErrBadKey)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBadKey)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%T is not ed25519: %w", k, ErrBadKey)
	}
	return pub, nil
}

// LoadPublicKey reads a public key file (PKIX PEM, as GenerateKey writes
// PublicKeyFile).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	pub, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", path, err)
	}
	return pub, nil
}

// Keyring is the set of public keys a device trusts, by KeyID. It is not
// modified after it is built, so it is safe for concurrent use.
type Keyring struct {
	keys map[string]ed25519.PublicKey
}

// NewKeyring trusts the given keys.
func NewKeyring(keys ...ed25519.PublicKey) *Keyring {
	k := &Keyring{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, p := range keys {
		k.keys[KeyID(p)] = p
	}
	return k
}

// LoadKeyring reads public key files.
func LoadKeyring(paths ...string) (*Keyring, error) {
	var keys []ed25519.PublicKey
	for _, p := range paths {
		pub, err := LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, pub)
	}
	return NewKeyring(keys...), nil
}

// Lookup returns the trusted key with id.
func (k *Keyring) Lookup(id string) (ed25519.PublicKey, bool) {
	if k == nil {
		return nil, false
	}
	p, ok := k.keys[id]
	return p, ok
}

// IDs lists the trusted key IDs, sorted.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// syncDir fsyncs a directory so that a rename or create inside it survives
// a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
