package rollout

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// builtinDir is the real built-in model package (fp32), read as files.
const builtinDir = "../../agent/builtin/model"

// pkgDir copies the built-in fp32 package (without its int8 sibling).
func pkgDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"manifest.json", "model.onnx"} {
		b, err := os.ReadFile(filepath.Join(builtinDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func genKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestKeysGen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	privPath, pubPath, id, err := GenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(privPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if KeyID(pub) != id || !pub.Equal(priv.Public()) {
		t.Fatalf("key id %s vs %s, or public key does not match the private one", KeyID(pub), id)
	}
	before, _ := os.ReadFile(privPath)
	if _, _, _, err := GenerateKey(dir); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second gen = %v, want ErrKeyExists", err)
	}
	if after, _ := os.ReadFile(privPath); !bytes.Equal(before, after) {
		t.Fatal("private key overwritten")
	}
	if _, err := LoadPrivateKey(pubPath); !errors.Is(err, ErrBadKey) {
		t.Errorf("public key as private = %v, want ErrBadKey", err)
	}
}

func build(t *testing.T, dir string, opt ReleaseOptions) *Release {
	t.Helper()
	if opt.Stage == "" {
		opt.Stage = StageShadow
	}
	if opt.Target == "" {
		opt.Target = "d1"
	}
	r, err := BuildRelease(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignVerify(t *testing.T) {
	pub, priv := genKey(t)
	otherPub, otherPriv := genKey(t)
	r := build(t, pkgDir(t), ReleaseOptions{ChunkSize: 64 << 10})
	if r.Name != "builtin-synthetic-tiles" || r.Version != "1.0.0" || len(r.Files) != 2 || len(r.Chunks) < 10 {
		t.Fatalf("release %s %s, %d files, %d chunks", r.Name, r.Version, len(r.Files), len(r.Chunks))
	}
	off, err := Sign(r, priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(off, NewKeyring(otherPub, pub))
	if err != nil || got.Version != r.Version || len(got.Chunks) != len(r.Chunks) {
		t.Fatalf("verify = %v, %v", got, err)
	}
	if _, err := Verify(off, NewKeyring(otherPub)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("untrusted key = %v, want ErrUnknownKey", err)
	}
	tampered := *off
	tampered.Release = bytes.Replace(off.Release, []byte(`"stage":"shadow"`), []byte(`"stage":"all"`), 1)
	if _, err := Verify(&tampered, NewKeyring(pub)); !errors.Is(err, ErrSignature) {
		t.Errorf("tampered release = %v, want ErrSignature", err)
	}
	// Another key's signature under this key's ID.
	forged, _ := Sign(r, otherPriv)
	forged.KeyID = KeyID(pub)
	if _, err := Verify(forged, NewKeyring(pub)); !errors.Is(err, ErrSignature) {
		t.Errorf("forged = %v, want ErrSignature", err)
	}
}

func TestReleaseValidate(t *testing.T) {
	good := build(t, pkgDir(t), ReleaseOptions{})
	cases := []struct {
		name string
		mod  func(r *Release)
	}{
		{"format", func(r *Release) { r.Format = 2 }},
		{"stage", func(r *Release) { r.Stage = "yolo" }},
		{"path escapes", func(r *Release) { r.Files[0].Path = "../x" }},
		{"absolute path", func(r *Release) { r.Files[0].Path = "/etc/passwd" }},
		{"manifest altered", func(r *Release) { r.Manifest = append([]byte(nil), r.Manifest[1:]...) }},
		{"chunk count", func(r *Release) { r.Chunks = r.Chunks[1:] }},
		{"chunk size", func(r *Release) { r.ChunkSize = MaxChunkSize + 1 }},
		{"offer id", func(r *Release) { r.Offer = "a/b" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := *good
			r.Files = append([]File(nil), good.Files...)
			c.mod(&r)
			if err := r.Validate(); !errors.Is(err, ErrBadRelease) {
				t.Errorf("Validate = %v, want ErrBadRelease", err)
			}
		})
	}
}

func TestAssembleResumeAndCorrupt(t *testing.T) {
	pkg := pkgDir(t)
	r := build(t, pkg, ReleaseOptions{ChunkSize: 32 << 10})
	src := NewSource(pkg, r)
	tmp := t.TempDir()
	chunks := filepath.Join(tmp, "chunks")
	a, err := NewAssembler(chunks, r)
	if err != nil {
		t.Fatal(err)
	}
	half := a.Total() / 2
	for k := range half {
		b, err := src.Chunk(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Put(k, b); err != nil {
			t.Fatal(err)
		}
	}
	// A corrupt chunk is refused and not stored.
	b, _ := src.Chunk(half)
	b[0] ^= 0xff
	if err := a.Put(half, b); !errors.Is(err, ErrCorruptChunk) {
		t.Fatalf("corrupt chunk = %v, want ErrCorruptChunk", err)
	}
	if err := a.Put(half, b[:10]); !errors.Is(err, ErrCorruptChunk) {
		t.Fatalf("short chunk = %v, want ErrCorruptChunk", err)
	}
	// A crash: a torn temp file and a chunk damaged on disk; a fresh
	// assembler keeps only the verified ones.
	os.WriteFile(filepath.Join(chunks, chunkName(half)+".tmp"), []byte("torn"), 0o644)
	os.WriteFile(filepath.Join(chunks, chunkName(1)), []byte("garbage"), 0o644)
	a2, err := NewAssembler(chunks, r)
	if err != nil {
		t.Fatal(err)
	}
	if a2.Have() != half-1 || a2.Missing(1)[0] != 1 {
		t.Fatalf("resumed with %d chunks (want %d), first missing %v", a2.Have(), half-1, a2.Missing(1))
	}
	if err := a2.Assemble(filepath.Join(tmp, "early")); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("early assemble = %v, want ErrIncomplete", err)
	}
	for _, k := range a2.Missing(0) {
		b, _ := src.Chunk(k)
		if err := a2.Put(k, b); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(tmp, "pkg")
	if err := a2.Assemble(dst); err != nil {
		t.Fatal(err)
	}
	if err := CheckFiles(dst, r); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(builtinDir, "model.onnx"))
	if got, _ := os.ReadFile(filepath.Join(dst, "model.onnx")); !bytes.Equal(got, want) {
		t.Fatal("assembled model differs")
	}
	os.WriteFile(filepath.Join(dst, "extra"), nil, 0o644)
	if err := CheckFiles(dst, r); !errors.Is(err, ErrCorruptChunk) {
		t.Errorf("extra file = %v, want ErrCorruptChunk", err)
	}
	os.Remove(filepath.Join(dst, "extra"))
	os.Remove(filepath.Join(dst, "model.onnx"))
	if err := CheckFiles(dst, r); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file = %v, want fs.ErrNotExist", err)
	}
}

func TestFetchHTTP(t *testing.T) {
	pkg := pkgDir(t)
	r := build(t, pkg, ReleaseOptions{ChunkSize: 64 << 10})
	srv := httptest.NewServer(http.FileServer(http.Dir(pkg)))
	defer srv.Close()
	a, err := NewAssembler(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	// Resume: the first chunks are already here.
	src := NewSource(pkg, r)
	for k := range 3 {
		b, _ := src.Chunk(k)
		a.Put(k, b)
	}
	if err := FetchHTTP(t.Context(), srv.Client(), srv.URL, r, a); err != nil {
		t.Fatal(err)
	}
	if !a.Done() {
		t.Fatal("not done")
	}
	// A server with other content: the first wrong chunk stops the fetch.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "manifest.json"), r.Manifest, 0o644)
	model, _ := os.ReadFile(filepath.Join(builtinDir, "model.onnx"))
	model[len(model)/2] ^= 1
	os.WriteFile(filepath.Join(bad, "model.onnx"), model, 0o644)
	srv2 := httptest.NewServer(http.FileServer(http.Dir(bad)))
	defer srv2.Close()
	a2, _ := NewAssembler(t.TempDir(), r)
	if err := FetchHTTP(t.Context(), srv2.Client(), srv2.URL, r, a2); !errors.Is(err, ErrCorruptChunk) {
		t.Fatalf("bad server = %v, want ErrCorruptChunk", err)
	}
}

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.0.0", "1.0", 0},
		{"1.10.0", "1.9.2", 1},
		{"v2", "1.99", 1},
		{"0.1.0-fp32", "0.1.0", -1},
		{"1.0.0-rc.2", "1.0.0-rc.10", -1},
		{"2025.03.01", "2025.2.28", 1},
		{"1.0.0-a", "1.0.0-b", -1},
	}
	for _, c := range cases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	if tg, err := ParseTarget("plant1", "group:line-a"); err != nil || tg.Group != "line-a" || !strings.HasSuffix(tg.OfferTopic(), "/plant1/groups/line-a/model/offer") {
		t.Errorf("group target = %+v, %v", tg, err)
	}
	if tg, err := ParseTarget("plant1", "dev-7"); err != nil || tg.OfferTopic() != "linesight/v1/plant1/dev-7/model/offer" {
		t.Errorf("device target = %+v, %v", tg, err)
	}
	for _, bad := range []string{"", "a/b", "groups", "group:", "dev+"} {
		if _, err := ParseTarget("plant1", bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}
