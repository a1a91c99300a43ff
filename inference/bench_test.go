package inference

import (
	"context"
	"testing"

	"github.com/linesight/linesight/inference/onnx"
)

// BenchmarkEngine runs a 640x480 frame end to end (preprocess, run,
// decode) through the engine, fp32 and int8 side by side.
func BenchmarkEngine(b *testing.B) {
	rt := openRuntime(b)
	for _, dir := range []string{"classify", "classify-int8", "anomaly", "detect"} {
		b.Run(dir, func(b *testing.B) {
			e := openEngine(b, rt, modelDir(dir), Config{Options: onnx.Options{IntraOpThreads: 1}})
			mat, _ := testImage(b, 640, 480, 3, 1)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := e.Run(ctx, Frame{Image: mat}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStages reports each stage of the classifier separately, as
// `linesight model bench` does, with p50/p99 as custom metrics.
func BenchmarkStages(b *testing.B) {
	rt := openRuntime(b)
	for _, dir := range []string{"classify", "classify-int8"} {
		b.Run(dir, func(b *testing.B) {
			pkg, err := LoadPackage(modelDir(dir))
			if err != nil {
				b.Fatal(err)
			}
			mat, _ := testImage(b, 640, 480, 3, 1)
			for range b.N {
				rep, err := Bench(rt, pkg, BenchOptions{N: 50, Frame: mat, Options: onnx.Options{Provider: onnx.ProviderCPU, IntraOpThreads: 1}})
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range rep.Stages {
					b.ReportMetric(float64(s.P50.Microseconds()), s.Name+"-p50-µs")
					b.ReportMetric(float64(s.P99.Microseconds()), s.Name+"-p99-µs")
				}
			}
		})
	}
}
