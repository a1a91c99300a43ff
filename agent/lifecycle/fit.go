package lifecycle

import (
	"fmt"
	"slices"
	"strings"

	"github.com/linesight/linesight/inference"
)

// CameraInput is what a camera delivers: frame size and channels (1 gray,
// 3 colour).
type CameraInput struct {
	ID            string
	Width, Height int
	Channels      int
}

// Fits checks that m can replace active on cameras: the same task, the
// same labels and good labels (the policy's thresholds, always-review
// classes and the review UI name them), a colour model only on colour
// cameras, and an input no larger than any camera's frame. The error
// wraps ErrDoesNotFit and lists every problem.
func Fits(m, active *inference.Manifest, cameras []CameraInput) error {
	var p []string
	if active != nil {
		if m.Task != active.Task {
			p = append(p, fmt.Sprintf("task %s, the active model's is %s", m.Task, active.Task))
		}
		if !sameSet(m.Labels, active.Labels) {
			p = append(p, fmt.Sprintf("labels %v, the active model's are %v", m.Labels, active.Labels))
		}
		if !sameSet(m.GoodLabels, active.GoodLabels) {
			p = append(p, fmt.Sprintf("good labels %v, the active model's are %v", m.GoodLabels, active.GoodLabels))
		}
	}
	w, h, c := m.InputSize()
	for _, cam := range cameras {
		if cam.Channels == 1 && c == 3 && m.Input.Channels != inference.ChannelsGray {
			p = append(p, fmt.Sprintf("camera %s is gray, the model wants %s", cam.ID, m.Input.Channels))
		}
		if cam.Width > 0 && cam.Height > 0 && (w > cam.Width || h > cam.Height) {
			p = append(p, fmt.Sprintf("input %dx%d exceeds camera %s's %dx%d frames", w, h, cam.ID, cam.Width, cam.Height))
		}
	}
	if len(p) > 0 {
		return fmt.Errorf("%s %s: %s: %w", m.Name, m.Version, strings.Join(p, "; "), ErrDoesNotFit)
	}
	return nil
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
