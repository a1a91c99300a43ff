package main

import (
	"testing"

	"github.com/linesight/linesight/inference/eval"
)

func TestViewNoteAndWindowSummary(t *testing.T) {
	for _, c := range []struct {
		view, views int
		want        string
	}{
		{0, 1, ""},
		{0, 0, ""},
		{0, 4, ", the whole part decided over its 3 windows"},
		{2, 4, ", window 2 of 3 decided"},
	} {
		if got := viewNote(c.view, c.views); got != c.want {
			t.Errorf("viewNote(%d, %d) = %q, want %q", c.view, c.views, got, c.want)
		}
	}
	for _, c := range []struct {
		name  string
		parts []eval.Part
		want  string
	}{
		{"no windows", []eval.Part{{Views: 1, Verdict: "pass"}, {Views: 1, Verdict: "defer"}}, ""},
		{"windows", []eval.Part{{Views: 1, Verdict: "pass"}, {Views: 3, View: 0, Verdict: "pass"}, {Views: 3, View: 1, Verdict: "defer"},
			{Views: 4, View: 3, Verdict: "reject"}, {Views: 4, View: 2, Verdict: "defer"}},
			"windows: 4 of 5 parts scored in windows as well; a window decided 3 of them (0 passed, 1 rejected, 2 deferred)"},
	} {
		if got := windowSummary(c.parts); got != c.want {
			t.Errorf("%s: windowSummary = %q, want %q", c.name, got, c.want)
		}
	}
}
