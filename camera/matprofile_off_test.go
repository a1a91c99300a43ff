//go:build !matprofile

package camera

// openMats cannot count without -tags matprofile; it reports none.
func openMats() (int, string) { return 0, "" }
