// Package rollout signs model packages on the fleet and moves them to
// devices: ed25519 keys (GenerateKey, Keyring), the signed Release that
// names every file's and every transfer chunk's sha256 (BuildRelease, Sign,
// Verify), the fleet's Publisher that publishes offers and answers chunk
// requests over MQTT, the device's Link that receives them, the Assembler
// that collects chunks on disk so a transfer resumes, and FetchHTTP for
// offers that name an HTTP(S) URL. It is pure Go (linesight-fleet builds
// it with CGO_ENABLED=0) and knows nothing of inference: the device's
// checks that need the model (fit, health, shadow) live in agent/lifecycle.
//
//	linesight-fleet push ──Release──Sign──▶ model/offer (retained) ──▶ device: Verify
//	                     ◀── model/request (missing chunks) ───────────── Assembler.Missing
//	Publisher ── model/chunk ──────────────────────────────────────────▶ Assembler.Put (sha256 vs signed)
//	                                                                     Assemble → files (sha256 vs signed)
//
// # Trust
//
// The signature covers the release's exact bytes prefixed with
// SignatureContext; the release pins manifest.json verbatim and the size
// and sha256 of every file, so a device that trusts the key trusts every
// byte it assembles. Stage, canary share, promotion criteria and the
// rollback flag are signed too: whoever can publish on a device's offer
// topic cannot promote or roll back without the fleet's key.
//
// # Caveats
//
// A signed offer can be replayed (the device refuses it when its version
// is older than the active one, unless it is a signed rollback, which
// stays valid for its version); keep offer topics writable by the fleet
// only (the broker's ACL). The offer must fit one wire message (256 KiB):
// about 3,000 chunks of DefaultChunkSize, i.e. packages up to roughly
// 400 MB; larger ones need a bigger ChunkSize (up to MaxChunkSize).
package rollout
