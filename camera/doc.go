// Package camera is the first stage of the LineSight pipeline: it turns
// cameras, streams, files, image folders and the synthetic tile line into a
// stream of Frames for inference.
//
// A camera is configured by a Spec (plain data, validated with
// Spec.Validate); the capture sources that open a Spec land with issue 3.
package camera
