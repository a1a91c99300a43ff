//go:build matprofile

package main

import "gocv.io/x/gocv"

// openMats is how many gocv Mats are open (-tags matprofile).
func openMats() int { return gocv.MatProfile.Count() }
