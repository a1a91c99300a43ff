// Package monitor watches what the line feeds the model and what the model
// answers, and raises an alarm when either drifts from the training
// reference: lighting changes, a new supplier, a dirty lens, a model that
// has grown unsure. Drift is measured per camera over a sliding window with
// the population stability index (PSI) of each input statistic (brightness,
// contrast, sharpness) and of the model's confidence against the histograms
// in the model manifest's reference, and of the predicted-class mix against
// the training class mix.
//
// PSI reads, by the usual rule of thumb: below 0.1 stable, 0.1-0.25 a
// moderate shift, above 0.25 a significant one. The alarm is raised above
// Thresholds.Raise and cleared only below Thresholds.Clear (hysteresis), so
// it does not flap at the edge.
//
// The statistics here are pure functions; Drift holds one camera's windows
// and is not safe for concurrent use (the pipeline owns one per camera).
package monitor
