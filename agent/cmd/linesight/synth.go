package main

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"

	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/internal/cli"
)

// synthCmd writes a labelled synthetic magnetic-tile dataset in the real
// dataset's layout: OUT/CLASS/NAME.jpg and OUT/CLASS/NAME_mask.png.
func synthCmd(ctx context.Context, stdio Stdio, args []string) error {
	def := camera.DefaultSpec("synth").Source.Synthetic
	fs := newFlags("synth", stdio)
	out := fs.String("out", "", "output folder (created; class subfolders are written inside)")
	n := fs.Int("n", 0, "number of images to write")
	seed := fs.Int64("seed", def.Seed, "random seed; the same seed gives the same images")
	size := fs.Int("size", def.Size, "image side in pixels (32 to 4096)")
	rate := fs.Float64("defect-rate", def.DefectRate, "share of defective parts, 0 to 1")
	expMin := fs.Float64("exposure-min", def.ExposureMin, "lowest exposure gain (> 0)")
	expMax := fs.Float64("exposure-max", def.ExposureMax, "highest exposure gain (>= exposure-min)")
	quality := fs.Int("quality", 92, "JPEG quality, 1 to 100")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q; synth takes only flags (see linesight synth -h)", fs.Arg(0))
	}
	if *out == "" {
		return cli.Usagef("missing --out DIR: the folder to write CLASS/NAME.jpg and CLASS/NAME_mask.png into")
	}
	if *n <= 0 {
		return cli.Usagef("--n must be a positive number of images, got %d", *n)
	}
	if *quality < 1 || *quality > 100 {
		return cli.Usagef("--quality must be 1 to 100, got %d", *quality)
	}
	opt := camera.SyntheticSpec{Seed: *seed, Size: *size, DefectRate: *rate, ExposureMin: *expMin, ExposureMax: *expMax}
	gen, err := camera.NewGenerator(opt)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	for _, c := range camera.Classes {
		if err := os.MkdirAll(filepath.Join(*out, c), 0o755); err != nil {
			return fmt.Errorf("create output folder: %w", err)
		}
	}
	tile := gen.NewTile()
	counts := make(map[string]int, len(camera.Classes))
	for i := range *n {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped after %d of %d images: %w", i, *n, err)
		}
		gen.Generate(uint64(i), tile)
		name := fmt.Sprintf("syn_s%d_%06d", *seed, i)
		dir := filepath.Join(*out, tile.Class)
		img := &image.Gray{Pix: tile.Pix, Stride: tile.W, Rect: image.Rect(0, 0, tile.W, tile.H)}
		if err := writeImage(filepath.Join(dir, name+".jpg"), func(f *bufio.Writer) error {
			return jpeg.Encode(f, img, &jpeg.Options{Quality: *quality})
		}); err != nil {
			return err
		}
		mask := &image.Gray{Pix: tile.Mask, Stride: tile.W, Rect: image.Rect(0, 0, tile.W, tile.H)}
		if err := writeImage(filepath.Join(dir, name+"_mask.png"), func(f *bufio.Writer) error {
			return png.Encode(f, mask)
		}); err != nil {
			return err
		}
		counts[tile.Class]++
	}
	fmt.Fprintf(stdio.Out, "wrote %d images (%dx%d, seed %d) to %s:", *n, *size, *size, *seed, *out)
	for _, c := range camera.Classes {
		fmt.Fprintf(stdio.Out, " %s %d", c, counts[c])
	}
	fmt.Fprintln(stdio.Out)
	return nil
}

// writeImage writes one file through enc, reporting the path on failure.
func writeImage(path string, enc func(*bufio.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	w := bufio.NewWriter(f)
	if err := enc(w); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
