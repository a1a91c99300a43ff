// Package validate collects configuration errors that name the field, the
// value given and what is allowed, so that a person can fix a config file
// from the message alone. Every config section in LineSight (camera, model,
// policy, store, review, sync, fleet) validates through it. Pure Go.
package validate
