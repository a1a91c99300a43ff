// Package store is the agent's durable memory, one bbolt file beside a
// folder of JPEGs: every inspection the pipeline decides, the review queue
// the inspectors work through (with leases and labels), and the outbox the
// uplink drains to the cloud. Nothing is acknowledged before it is
// committed: Put, Label, Ack and the rest return only once their bbolt
// transaction has committed with fsync.
//
//	pipeline ──Put──▶ inspections ─┬─▶ queue ──Next/Claim──▶ review UI ──Label──▶ labels
//	                               └─▶ images/                                      │
//	uplink ◀──Pending── outbox ◀──────────────── (same transaction) ────────────────┘
//	uplink ───Ack────▶ outbox
//
// # Identifiers
//
// Inspection IDs come from Store.NewID: "<16 hex unix nanos>-<4 hex process
// tag>-<8 hex counter>". They sort by time, so the inspections and queue
// buckets, keyed by ID, are oldest first, and retention by age seeks to a
// time prefix. The pipeline assigns the ID once and reuses it on retries:
// Put of an ID already stored is a no-op. A label's ID is
// "<inspection ID>-l<revision>", its outbox entry "label-<label ID>"; a
// decision's outbox entry is "decision-<inspection ID>". The collector
// de-duplicates by these IDs, so redelivery is harmless.
//
// # Layout (schema version 2)
//
//	meta         schema_version; counters n/... and del/<cause>/<what> (8-byte big-endian)
//	inspections  ID → Inspection (JSON)
//	queue        ID → QueueItem (JSON; its lease fields are filled from memory)
//	labels       inspection ID → current Label (JSON; a correction keeps the one it replaced)
//	outbox       8-byte sequence → OutboxEntry (JSON); the bucket sequence never repeats
//	outbox_id    entry ID → sequence (Ack by ID)
//	pending_ref  inspection ID, 0, sequence → kind (what is unsynced about an inspection)
//	images       inspection ID → image size
//
// Leases (who is looking at a review item, until when) are kept in memory,
// not in the file: they are advisory and last minutes, so Next, Claim and
// Release cost no commit and no fsync, and a restart frees them all. Next and
// Claim re-read the queue after claiming, so an item labelled meanwhile is
// never handed out.
//
// Images live in <path>.images/<YYYYMMDD>/<ID>.jpg (UTC day of the ID).
//
// # Lifecycle
//
// Open migrates the schema in order (a new file runs every migration),
// sweeps image files no record references and starts two goroutines: the
// group-commit writer and the retention loop. Close refuses new writes,
// commits what was already submitted, waits for both goroutines and closes
// the file. Open the store before the pipeline, review UI and uplink, and
// close it after them.
//
// All writes go through the single writer goroutine. It takes every
// request waiting (up to Options.MaxBatch), runs them in one bbolt
// transaction and commits it with one fsync; each caller returns only after
// that commit. If one request fails, the transaction is rolled back, that
// caller gets its error, and the others are retried without it, so a
// failure never half-applies or fails a neighbour. Reads (Get, Queue,
// Pending, Stats) use read transactions and do not wait for the writer.
//
// # Images
//
// Put writes the JPEG to a temporary file, fsyncs it, renames it into place
// and, before the transaction referencing it commits, fsyncs its directory.
// Retention removes a file only after the transaction that dropped its
// reference committed. So a record never points to a missing image; a crash
// may leave an image without a record, and Open removes it. The store takes
// JPEG bytes: encoding (jpeg_quality) and choosing which parts keep an image
// (keep_images) are the pipeline's job.
//
// # Retention
//
// Retain (every Options.RetentionEvery in the background) first deletes
// what is older than MaxAge, then, if the disk budget MaxBytes is exceeded,
// frees down to MaxBytes×(1-Headroom) in this order, oldest first within
// each category:
//
//  1. images of synced automatic decisions (not queued, not labelled,
//     nothing pending in the outbox); the record stays, ImagePurged set;
//  2. images of labelled items whose label the collector acknowledged;
//  3. synced inspection records (not queued), with their synced labels;
//  4. unsent decision, event and telemetry outbox entries (never labels);
//  5. categories 1 to 3 again (step 4 made more records synced);
//  6. unreviewed review-queue items (record, image and queue entry), even
//     when leased: a full disk must not stop the line.
//
// Never deleted, by age or budget: a label whose outbox entry is pending,
// that entry, and the inspection and image it refers to (the collector
// needs them to build the sample). Every deletion is counted by cause (age,
// budget) and object in exact counters (Stats.DeletedByAge/ByBudget).
//
// # Caveats
//
// bbolt files never shrink. The budget counts Usage.DBInUse (file size less
// the free and pending pages of bbolt's freelist) plus the image files, not
// the file size. Bytes freed by a deletion are estimated from the keys and
// values removed (a page is freed only when it empties), so retention may
// free somewhat more or less than asked; the Headroom keeps it from running
// on every record. The budget is enforced every RetentionEvery, so it can be
// exceeded by what is written in between.
//
// Group commit needs concurrency to pay off: one caller at a time gets one
// fsync per Put. Queue filtering scans the queue bucket (fine for the
// thousands of items a queue holds; not for millions).
package store
