// Package inference is the second stage of the LineSight pipeline: it turns
// a camera frame into a Result (scores per label, top class, heatmap,
// boxes, per-stage timings) by running a model package through ONNX
// Runtime (package onnx).
//
//	camera.Source ──Frame──▶ inference.Engine ──Result──▶ policy ──Decision──▶ outputs
//
// # Model package
//
// A model package is a directory holding model.onnx and manifest.json
// (JSON, so that Python's json module writes it as is; unknown fields are
// errors). scripts/train writes it, Engine and the policy and monitor read
// it. Fields (see Manifest for each one's doc):
//
//	format       1
//	name, version, task (classify | anomaly | detect), description, created
//	model        file (default model.onnx), sha256 (checked at load: ErrChecksum), precision, opset
//	input        name, shape [N,C,H,W] or [N,H,W,C] (N may be -1), layout (nchw | nhwc),
//	             channels (gray | rgb | bgr), resize (stretch | letterbox | center-crop),
//	             interpolation (linear | area | nearest), orient (none | landscape: a ROI taller
//	             than wide is turned a quarter clockwise after the resize), pad_value, scale, mean, std,
//	             windows {overlap, min_aspect, corners} (square input, classify or anomaly: an
//	             elongated ROI is also scored in squares of its short side along its long side,
//	             with corners every ROI in its four corners too; see Windows and Engine.Run: the
//	             view with the lowest P(good) decides)
//	outputs      [{name, role}]: logits | probabilities | heatmap (classify);
//	             score | label | anomaly_map | mask (anomaly, Anomalib's names);
//	             boxes with box_format cxcywh | xyxy (detect, Ultralytics' [N,4+K,B])
//	labels       in output order; good_labels: the labels of good parts
//	thresholds   pass, reject, per_class, anomaly, score, iou, calibration{...}
//	reference    images, measured (input or frame), brightness, contrast, sharpness ({mean, std, min, max,
//	             p01, p50, p99, edges, hist}), class_mix, confidence
//	training     dataset, fingerprint (see Fingerprint), images, classes, split, seed, epochs, augment, extra
//	metrics      split, images, accuracy, macro_f1, per_class, confusion, automation_rate,
//	             escape_rate, false_reject_rate, auroc
//
// testdata/manifests/classify-full.json is a complete example. The
// reference statistics are of a gray (BT.601) image scaled to [0,1]:
// brightness is its mean, contrast its standard deviation, sharpness the
// variance of its 3x3 Laplacian (cv2.Laplacian(gray/255, CV_64F)).
// reference.measured says which image: "input" (what train.py writes now)
// is the image as the model sees it, resized to the model input before any
// padding, which the engine measures while it preprocesses (Result.Stats,
// a few tens of microseconds at the model's resolution); "frame" (or no
// field, older packages) is the whole ROI at the camera's resolution, which
// the pipeline measures with a Measurer.
//
// A bare .onnx can be used without a manifest (LoadBare): the graph gives
// the input name and shape and the outputs; the rest comes from
// BareOptions or is assumed, and Package.Assumed lists every assumption.
//
// # Preprocessing
//
// ROI, then BGR→gray when the model is gray, then the resize, then channel
// order, x*scale, (x-mean)/std, written in the model's layout into the
// session's input tensor (no allocation per frame). For a model of batch 1
// each session has two input buffers and the caller's goroutine writes the
// frame into a free one while the session may still be running the frame
// before, so the session goes from run to run without waiting for a
// preprocessing (Run from two goroutines per session to get the overlap);
// batched models are preprocessed by the session's worker as it fills the
// batch. Each session's worker keeps one OS thread for its whole life
// (runtime.LockOSThread): a one-thread CPU session runs on the caller's
// thread, and one that moved between threads and cores after every frame
// found its weights cold in cache. With Config.CPUs that thread is also
// pinned to the model's CPUs (and ONNX Runtime's intra-op pool is given
// the same CPUs through session.intra_op_thread_affinities); a pinned
// thread ends with its worker rather than go back to Go's scheduler, and
// Open refuses CPUs the kernel will not let the process use (ErrConfig).
// Moving the rest of the process off those CPUs is the caller's part
// (internal/affinity.Exclude, done by the agent). Preprocess.Reference
// computes the same numbers in plain Go, bit-exact with OpenCV 4.6 (the
// training-serving skew test compares Python against it).
//
// # Lifecycle
//
// onnx.OpenRuntime, LoadPackage (or Load), Open, then Run from any number
// of goroutines; Swap replaces the model while frames run (in-flight frames
// finish on the old sessions, which are closed after); Close waits for
// frames in flight, then closes the sessions; close the Runtime last.
//
// # Caveats
//
// Run blocks until its frame is done even when ctx ends, because the
// engine reads the caller's Mat until then; a run in progress is
// terminated through ONNX Runtime when ctx ends. Each session has its own
// ONNX Runtime thread pool: on a small CPU set IntraOpThreads so that
// Sessions*IntraOpThreads does not exceed the cores. Output shapes are
// fixed at the first (warm-up) run; graphs whose output size varies per
// input (e.g. NMS inside the graph) are not supported.
package inference
