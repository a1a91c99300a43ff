// Package lifecycle manages the model versions of one line device: it
// receives signed offers from the fleet (sync/rollout), fetches the package
// in resumable sha256-checked chunks (MQTT) or over HTTP(S), verifies it
// against the trusted keys, refuses what must not run (older versions
// without a signed rollback, oversized packages, models that do not fit
// the cameras or the active model's labels, models failing a health check
// on recent frames), runs a candidate in shadow beside the active model,
// promotes it by command or when the offer's criteria hold, and rolls back
// on errors or a latency regression.
//
//	offer ─▶ Verify ─▶ admit (version, size, fit) ─▶ chunks ─▶ install (fsync, rename)
//	      ─▶ load + health check ─▶ shadow (Observe) ─▶ promote (Activator) ─▶ probation ─▶ active
//	                                                   └─▶ rejected             └─▶ rolled-back
//
// # What the agent wires
//
//   - Engines: opens a candidate (inference.Open with the agent's runtime and config).
//   - Activator: the pipeline's switch, Activate(pkg) = its engine's Swap(pkg);
//     called on promotion and rollback, never at Open.
//   - Frames: Recent(n) JPEGs from the store for the health check.
//   - Requester and Reporter: sync/rollout.Link on the uplink's MQTT client
//     (chunk requests; model/state), and Link's DeviceHandler is the
//     Lifecycle itself (HandleOffer, HandleChunk).
//   - The pipeline opens its engine with Active() after Open, and per frame
//     runs Shadow() (when not nil) beside the active engine and calls
//     Observe(active, &shadow) (Observe(active, nil) otherwise), with each
//     model's label, would-be automation (the policy's decision for that
//     result) and latency.
//   - Commands: Promote and Rollback (wire.OpRollback; a promote op is yet
//     to be added to wire.Command).
//
// # Lifecycle
//
// Open recovers the disk (below) and starts one goroutine that handles
// offers, chunks, commands and decisions in order; Close stops it and
// closes the candidate engine, never the pipeline's.
//
// # On disk (Options.Dir, normally <data_dir>/models)
//
//	active                    {"active":"name@version","previous":"..."}: written to active.tmp, fsynced, renamed, dir fsynced
//	versions/<name@version>/  the package's files and release.json (the signed offer that installed it)
//	versions/.tmp-*           a version being assembled; removed at Open
//	incoming/<offer>/NNNNNN   verified chunks of a transfer; a transfer resumes from them
//	rejected/<name@version>   why a version was rolled back or failed; it is not installed again
//
// A power cut at any step leaves a verified model serving: a version is
// complete before it is renamed into versions/, the pointer switches by
// rename, and Open re-verifies the active version (signature, every
// file's sha256, the manifest and model checksum) and falls back to the
// previous version, then the built-in model (Options.Builtin), writing the
// fallback to the pointer.
//
// # Caveats
//
// Fit means: the same task, labels and good labels as the active model, a
// colour model only on colour cameras, an input no larger than the camera
// frames. One candidate at a time: a newer offer replaces a transfer or a
// candidate in progress. A promoted version's probation compares its
// latency with the previous version's recent latency (an EWMA over the
// frames before the switch).
package lifecycle
