//go:build matprofile

package camera

import (
	"bytes"

	"gocv.io/x/gocv"
)

// openMats is how many Mats are open, with their allocation stacks.
func openMats() (int, string) {
	var b bytes.Buffer
	gocv.MatProfile.WriteTo(&b, 1)
	return gocv.MatProfile.Count(), b.String()
}
