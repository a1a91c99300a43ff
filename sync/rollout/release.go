package rollout

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/linesight/linesight/sync/wire"
)

// ReleaseFormat is the version of the signed Release this build reads and writes.
const ReleaseFormat = 1

// Stages of a rollout.
const (
	// StageShadow: the device runs the candidate beside the active model and
	// promotes it when the criteria hold (or on a promote command).
	StageShadow = "shadow"
	// StageCanary: devices whose share (see Release.Canary) falls in the
	// canary fraction promote at once on probation; the others run it in shadow.
	StageCanary = "canary"
	// StageAll: every device promotes at once, on probation.
	StageAll = "all"
)

// Stages lists the valid stages.
var Stages = []string{StageShadow, StageCanary, StageAll}

// Limits.
const (
	DefaultChunkSize = 128 << 10
	// MaxChunkSize keeps a chunk message under the wire's size limit.
	MaxChunkSize = wire.MaxChunkData
	MaxFiles     = 64
	// MaxManifestSize caps the manifest.json carried in the release.
	MaxManifestSize = 256 << 10
	// ManifestFile is the package file the release carries verbatim.
	ManifestFile = "manifest.json"
	// DefaultCanary is the canary share when a canary release names none.
	DefaultCanary = 0.1
	// SignatureContext is prefixed to the release bytes before signing, so a
	// signature made for anything else never verifies as a release.
	SignatureContext = "linesight model release v1\n"
)

// Criteria decide when a device promotes a candidate out of shadow, and
// when it rolls a promoted version back (probation).
type Criteria struct {
	// MinFrames: frames compared in shadow (and served on probation) before deciding.
	MinFrames int `json:"min_frames"`
	// MinAgreement: share of shadow frames where both models give the same label.
	MinAgreement float64 `json:"min_agreement"`
	// MaxLatencyRatio: candidate mean latency / active mean latency must not exceed it.
	MaxLatencyRatio float64 `json:"max_latency_ratio"`
	// MaxErrorRate: share of frames the candidate may fail on (shadow or probation).
	MaxErrorRate float64 `json:"max_error_rate"`
	// Auto promotes when the criteria hold; false waits for a promote command.
	Auto bool `json:"auto"`
}

// DefaultCriteria are used by push when no flags say otherwise.
func DefaultCriteria() Criteria {
	return Criteria{MinFrames: 200, MinAgreement: 0.95, MaxLatencyRatio: 1.5, MaxErrorRate: 0.01, Auto: true}
}

// File is one file of the model package.
type File struct {
	Path   string `json:"path"` // relative, '/'-separated
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lower-case hex
}

// Release is what the fleet signs: the model package's identity and
// content (every file's size and sha256, and every transfer chunk's
// sha256) and how the device should roll it out. The device verifies the
// signature over the exact bytes it received (Verify), so no JSON
// canonicalisation is involved.
type Release struct {
	Format  int    `json:"format"`
	Offer   string `json:"offer"` // unique per push: names the transfer
	Name    string `json:"name"`
	Version string `json:"version"`
	Created string `json:"created"` // RFC 3339
	// Target is what push was told: a device ID, or "group:NAME".
	Target string `json:"target"`
	Stage  string `json:"stage"`
	// Canary is the share of devices that promote at once in the canary stage.
	Canary float64 `json:"canary,omitempty"`
	// Rollback allows a version older than the device's active one.
	Rollback bool     `json:"rollback,omitempty"`
	Criteria Criteria `json:"criteria"`
	// Manifest is the package's manifest.json, verbatim, so the device can
	// check that the model fits before it downloads it.
	Manifest  []byte   `json:"manifest"`
	Files     []File   `json:"files"`
	ChunkSize int      `json:"chunk_size"`
	Chunks    []string `json:"chunks"` // sha256 hex of each chunk, files concatenated in order
}

// Size is the package's total size in bytes.
func (r *Release) Size() int64 {
	var n int64
	for _, f := range r.Files {
		n += f.Size
	}
	return n
}

// ID is the directory name a device stores the version under:
// name@version with anything but letters, digits, '.', '-' and '_'
// replaced by '_'.
func (r *Release) ID() string { return VersionID(r.Name, r.Version) }

// VersionID builds the on-disk name of a model version.
func VersionID(name, version string) string { return clean(name) + "@" + clean(version) }

func clean(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	if s := string(b); s != "" && s != "." && s != ".." {
		return s
	}
	return "_"
}

// Span is where one chunk lies: in file File at byte Offset, Len bytes.
type Span struct {
	File   int
	Offset int64
	Len    int
}

// Spans maps every chunk to its place in the files: each file is cut into
// ChunkSize pieces (the last one shorter); empty files have none.
func (r *Release) Spans() []Span {
	var s []Span
	if r.ChunkSize <= 0 {
		return nil
	}
	for i, f := range r.Files {
		for off := int64(0); off < f.Size; off += int64(r.ChunkSize) {
			n := min(int64(r.ChunkSize), f.Size-off)
			s = append(s, Span{File: i, Offset: off, Len: int(n)})
		}
	}
	return s
}

// Validate checks the release's structure; it does not read any file.
func (r *Release) Validate() error {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if r.Format != ReleaseFormat {
		bad("format %d (this build reads %d)", r.Format, ReleaseFormat)
	}
	if r.Offer == "" || len(r.Offer) > 64 || clean(r.Offer) != r.Offer {
		bad("offer: 1-64 letters, digits, '.', '-' or '_'")
	}
	if r.Name == "" || r.Version == "" {
		bad("name and version are required")
	}
	switch r.Stage {
	case StageShadow, StageCanary, StageAll:
	default:
		bad("stage %q (want shadow, canary or all)", r.Stage)
	}
	if r.Canary < 0 || r.Canary > 1 {
		bad("canary %v (want 0..1)", r.Canary)
	}
	c := r.Criteria
	if c.MinFrames < 0 || c.MinAgreement < 0 || c.MinAgreement > 1 || c.MaxLatencyRatio < 0 || c.MaxErrorRate < 0 || c.MaxErrorRate > 1 {
		bad("criteria out of range")
	}
	if r.ChunkSize <= 0 || r.ChunkSize > MaxChunkSize {
		bad("chunk_size %d (want 1..%d)", r.ChunkSize, MaxChunkSize)
	}
	if len(r.Files) == 0 || len(r.Files) > MaxFiles {
		bad("files: 1..%d", MaxFiles)
	}
	seen := map[string]bool{}
	var manifestHash string
	for _, f := range r.Files {
		if !validPath(f.Path) || seen[f.Path] {
			bad("file path %q", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || !isHex64(f.SHA256) {
			bad("file %q: size or sha256", f.Path)
		}
		if f.Path == ManifestFile {
			manifestHash = f.SHA256
		}
	}
	if manifestHash == "" {
		bad("no %s among the files", ManifestFile)
	} else if len(r.Manifest) > MaxManifestSize || sha256hex(r.Manifest) != manifestHash {
		bad("manifest does not match %s's sha256", ManifestFile)
	}
	if len(errs) == 0 {
		if n := len(r.Spans()); n != len(r.Chunks) {
			bad("%d chunk hashes for %d chunks", len(r.Chunks), n)
		}
		for _, h := range r.Chunks {
			if !isHex64(h) {
				bad("chunk hash %q", h)
				break
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", strings.Join(errs, "; "), ErrBadRelease)
	}
	return nil
}

func validPath(p string) bool {
	if p == "" || len(p) > 200 || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || path.Clean(p) != p {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." || seg == "" || strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ReleaseOptions say how BuildRelease describes the rollout.
type ReleaseOptions struct {
	Name, Version string // from the manifest when empty
	Target        string
	Stage         string
	Canary        float64
	Rollback      bool
	Criteria      Criteria
	ChunkSize     int       // DefaultChunkSize when 0
	Offer         string    // random when empty
	Now           time.Time // time.Now when zero
}

// BuildRelease reads the model package in dir (every regular file whose
// name does not start with '.', which must include manifest.json) and
// describes it as a Release: sizes and sha256 of the files and of every
// chunk. The manifest's name and version are read with a minimal JSON
// decode (this package stays free of inference); opt may override them.
func BuildRelease(dir string, opt ReleaseOptions) (*Release, error) {
	if opt.ChunkSize == 0 {
		opt.ChunkSize = DefaultChunkSize
	}
	if opt.Offer == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("build release: %w", err)
		}
		opt.Offer = hex.EncodeToString(b[:])
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	if opt.Stage == StageCanary && opt.Canary == 0 {
		opt.Canary = DefaultCanary
	}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("build release: %w", err)
	}
	sort.Strings(paths)
	r := &Release{Format: ReleaseFormat, Offer: opt.Offer, Name: opt.Name, Version: opt.Version,
		Created: opt.Now.UTC().Format(time.RFC3339), Target: opt.Target, Stage: opt.Stage, Canary: opt.Canary,
		Rollback: opt.Rollback, Criteria: opt.Criteria, ChunkSize: opt.ChunkSize}
	for _, p := range paths {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, fmt.Errorf("build release: %w", err)
		}
		whole := sha256.New()
		var size int64
		buf := make([]byte, opt.ChunkSize)
		for {
			n, err := io.ReadFull(f, buf)
			if n > 0 {
				whole.Write(buf[:n])
				r.Chunks = append(r.Chunks, sha256hex(buf[:n]))
				size += int64(n)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("build release: read %s: %w", p, err)
			}
		}
		f.Close()
		r.Files = append(r.Files, File{Path: p, Size: size, SHA256: hex.EncodeToString(whole.Sum(nil))})
		if p == ManifestFile {
			if r.Manifest, err = os.ReadFile(filepath.Join(dir, ManifestFile)); err != nil {
				return nil, fmt.Errorf("build release: %w", err)
			}
		}
	}
	if r.Manifest == nil {
		return nil, fmt.Errorf("build release: %s has no %s: %w", dir, ManifestFile, ErrBadRelease)
	}
	var m struct{ Name, Version string }
	if err := json.Unmarshal(r.Manifest, &m); err != nil {
		return nil, fmt.Errorf("build release: %s: %v: %w", ManifestFile, err, ErrBadRelease)
	}
	if r.Name == "" {
		r.Name = m.Name
	}
	if r.Version == "" {
		r.Version = m.Version
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("build release: %w", err)
	}
	return r, nil
}

// Sign encodes r and signs it with key, giving the offer that carries it
// (wire.ModelOffer: the exact signed bytes, the key's ID, the signature).
func Sign(r *Release, key ed25519.PrivateKey) (*wire.ModelOffer, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok || len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign: %w", ErrBadKey)
	}
	return &wire.ModelOffer{Release: b, KeyID: KeyID(pub), Signature: ed25519.Sign(key, signedMessage(b))}, nil
}

func signedMessage(release []byte) []byte {
	return append([]byte(SignatureContext), release...)
}

// Verify checks the offer's signature against the trusted keys and returns
// the release it carries. Errors wrap ErrUnknownKey, ErrSignature or
// ErrBadRelease.
func Verify(s *wire.ModelOffer, keys *Keyring) (*Release, error) {
	pub, ok := keys.Lookup(s.KeyID)
	if !ok {
		return nil, fmt.Errorf("verify release: key %q (trusted: %s): %w", s.KeyID, strings.Join(keys.IDs(), ", "), ErrUnknownKey)
	}
	if len(s.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, signedMessage(s.Release), s.Signature) {
		return nil, fmt.Errorf("verify release: key %s: %w", s.KeyID, ErrSignature)
	}
	var r Release
	dec := json.NewDecoder(bytes.NewReader(s.Release))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("verify release: %v: %w", err, ErrBadRelease)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("verify release: %w", err)
	}
	return &r, nil
}
