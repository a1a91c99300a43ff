// Package atomicfile replaces a file so that a crash at any point leaves
// either the old content or the new one, and the new one on disk once
// WriteFile returns: write path.tmp beside it, fsync, rename over it,
// fsync the directory. The lifecycle's pointer and release files and a
// recalibrated model manifest are written this way.
package atomicfile
