// Package policy is the guardrail layer between the model and the line: it
// turns a model's output for one part into a Decision (pass, reject or
// defer to a human) according to the camera's degree of automation, the
// calibrated thresholds and the guardrails, and records why.
//
// The degrees of automation, left to right as trust grows:
//
//	human    every part goes to review; the model's output is not shown
//	shadow   the model runs, its would-be verdict is recorded, nobody acts on it
//	assist   every part goes to review with the model's hint (top classes, heatmap)
//	partial  confident passes and rejects are automatic; the rest go to review
//	full     the model decides every part; only guardrails defer
//
// Guardrails, checked in this order before any threshold:
//
//  1. a failed inference, a timeout or a missed deadline gives the fail-safe
//     verdict (reject or defer, never pass);
//  2. an out-of-distribution input (blank or covered frame; brightness,
//     contrast or sharpness outside the training reference) is deferred;
//  3. classes configured to always go to a human are deferred;
//  4. an active drift alarm lowers partial and full to assist when configured.
//
// A wrong automatic pass (an escape) costs far more than a deferral, so at
// the full level a part that is not confidently good is rejected, never
// passed. A configurable share of automatic decisions is also sent to
// review (the audit sample): it is how a plant learns its real escape rate.
//
// Decide is a pure function; DeferWindow tracks the defer rate for its alarm.
package policy
