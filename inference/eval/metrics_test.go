package eval

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGoodScoreSumsGoodLabels(t *testing.T) {
	if g := GoodScore([]float32{0.25, 0.5, 0.25}, []bool{true, false, true}); g != 0.5 {
		t.Fatalf("GoodScore = %v, want 0.5", g)
	}
	if g := GoodScore([]float32{0.7, 0.7}, []bool{true, true}); g != 1 {
		t.Fatalf("GoodScore clamps to 1, got %v", g)
	}
}

func TestConfusionAndClassification(t *testing.T) {
	// 3 labels; truth/pred pairs chosen so every figure is easy to check by hand.
	truth := []int{0, 0, 0, 0, 1, 1, 2, 2, 2, 2}
	pred := []int{0, 0, 0, 1, 1, 2, 2, 2, 2, 0}
	conf := Confusion(3, truth, pred)
	want := [][]int{{3, 1, 0}, {0, 1, 1}, {1, 0, 3}}
	for i := range want {
		for j := range want[i] {
			if conf[i][j] != want[i][j] {
				t.Fatalf("confusion = %v, want %v", conf, want)
			}
		}
	}
	per, acc, f1 := Classification(conf)
	if acc != 0.7 {
		t.Errorf("accuracy = %v, want 0.7", acc)
	}
	exp := []ClassMetrics{
		{Precision: 3.0 / 4, Recall: 3.0 / 4, F1: 0.75, Support: 4},
		{Precision: 1.0 / 2, Recall: 1.0 / 2, F1: 0.5, Support: 2},
		{Precision: 3.0 / 4, Recall: 3.0 / 4, F1: 0.75, Support: 4},
	}
	for k := range exp {
		if !near(per[k].Precision, exp[k].Precision) || !near(per[k].Recall, exp[k].Recall) || !near(per[k].F1, exp[k].F1) || per[k].Support != exp[k].Support {
			t.Errorf("class %d: %+v, want %+v", k, per[k], exp[k])
		}
	}
	if !near(f1, (0.75+0.5+0.75)/3) {
		t.Errorf("macro F1 = %v", f1)
	}
}

func TestClassificationEdgeCases(t *testing.T) {
	// Label 1 is never predicted and label 2 has no support.
	per, acc, f1 := Classification([][]int{{2, 0, 0}, {1, 0, 0}, {0, 0, 0}})
	if per[1].Precision != 0 || per[1].Recall != 0 || per[1].F1 != 0 {
		t.Errorf("never-predicted label: %+v", per[1])
	}
	if per[2].Support != 0 || per[2].Recall != 0 {
		t.Errorf("label without support: %+v", per[2])
	}
	if !near(acc, 2.0/3) {
		t.Errorf("accuracy %v", acc)
	}
	// Macro F1 averages over labels with support only: label 0 (P 2/3, R 1) and label 1 (0).
	if !near(f1, (0.8+0)/2) {
		t.Errorf("macro F1 %v, want 0.4", f1)
	}
	if _, acc, _ := Classification([][]int{{0, 0}, {0, 0}}); acc != 0 {
		t.Errorf("empty accuracy %v", acc)
	}
}

func TestRates(t *testing.T) {
	for _, c := range []struct {
		name     string
		verdicts []Verdict
		isGood   []bool
		want     Automation
	}{
		{
			name:     "mixed",
			verdicts: []Verdict{Pass, Pass, Pass, Reject, Defer, Pass, Reject, Defer},
			isGood:   []bool{true, true, true, true, true, false, false, false},
			want: Automation{Parts: 8, Good: 5, Defective: 3, Passed: 4, Rejected: 2, Deferred: 2, Escapes: 1, FalseRejects: 1,
				AutomationRate: 6.0 / 8, EscapeRate: 1.0 / 3, FalseRejectRate: 1.0 / 5, DeferRate: 2.0 / 8,
				EscapeRateUpper: 0.8646496378, FalseRejectRateUpper: 0.6574083180},
		},
		{
			name:     "all deferred",
			verdicts: []Verdict{Defer, Defer},
			isGood:   []bool{true, false},
			want: Automation{Parts: 2, Good: 1, Defective: 1, Deferred: 2, DeferRate: 1,
				EscapeRateUpper: 0.95, FalseRejectRateUpper: 0.95},
		},
		{
			name:     "no defective parts: escape rate 0",
			verdicts: []Verdict{Pass, Reject},
			isGood:   []bool{true, true},
			want: Automation{Parts: 2, Good: 2, Passed: 1, Rejected: 1, FalseRejects: 1, AutomationRate: 1, FalseRejectRate: 0.5,
				EscapeRateUpper: 1, FalseRejectRateUpper: 0.9746794345},
		},
		{name: "empty: nothing vouched for", want: Automation{EscapeRateUpper: 1, FalseRejectRateUpper: 1}},
	} {
		got := Rates(c.verdicts, c.isGood)
		// the bounds are bisected: equal to 1e-9
		for _, b := range []struct{ got, want *float64 }{{&got.EscapeRateUpper, &c.want.EscapeRateUpper},
			{&got.FalseRejectRateUpper, &c.want.FalseRejectRateUpper}} {
			if math.Abs(*b.got-*b.want) < 1e-9 {
				*b.got = *b.want
			}
		}
		if got != c.want {
			t.Errorf("%s: Rates = %+v, want %+v", c.name, got, c.want)
		}
	}
}

// The reference bounds are Clopper-Pearson's, computed apart from this code
// (Python: bisection of the binomial CDF summed with math.comb); 5 of 10 is
// the textbook 0.7776.
func TestUpperBound(t *testing.T) {
	for _, c := range []struct {
		k, n int
		want float64
	}{
		{0, 33, 0.0867811893}, {0, 51, 0.0570479524}, {1, 33, 0.1358506468}, {1, 82, 0.0565479664},
		{3, 131, 0.0581219657}, {0, 299, 0.0099691468}, {0, 298, 0.0100024324}, {5, 10, 0.7775588990},
		{9, 10, 0.9948838031}, {10, 10, 1}, {0, 0, 1}, {-1, 5, UpperBound(0, 5, 0.95)},
	} {
		if got := UpperBound(c.k, c.n, 0.95); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("UpperBound(%d, %d) = %.10f, want %.10f", c.k, c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		rate float64
		want int
	}{{0.01, 299}, {0.02, 149}, {0.05, 59}, {0, 0}, {1, 0}} {
		got := ZeroEventTrials(c.rate, 0.95)
		if got != c.want {
			t.Errorf("ZeroEventTrials(%g) = %d, want %d", c.rate, got, c.want)
		}
		if got > 0 && (UpperBound(0, got, 0.95) > c.rate || UpperBound(0, got-1, 0.95) <= c.rate) {
			t.Errorf("ZeroEventTrials(%g) = %d is not the least n with UpperBound(0, n) <= %g", c.rate, got, c.rate)
		}
	}
}

func TestAUROC(t *testing.T) {
	for _, c := range []struct {
		score []float64
		pos   []bool
		want  float64
	}{
		{[]float64{0.9, 0.8, 0.1, 0.2}, []bool{true, true, false, false}, 1},
		{[]float64{0.1, 0.2, 0.9, 0.8}, []bool{true, true, false, false}, 0},
		{[]float64{0.5, 0.5}, []bool{true, false}, 0.5},
		{[]float64{0.9, 0.3, 0.5, 0.1}, []bool{true, true, false, false}, 0.75},
		{[]float64{0.9}, []bool{true}, 0},
	} {
		if got := AUROC(c.score, c.pos); !near(got, c.want) {
			t.Errorf("AUROC(%v, %v) = %v, want %v", c.score, c.pos, got, c.want)
		}
	}
}

func TestScanFolder(t *testing.T) {
	root := t.TempDir()
	write := func(rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("free/a.jpg")
	write("free/a_mask.png")
	write("crack/b.PNG")
	write("crack/notes.txt")
	write("empty/.keep")
	ds, err := ScanFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Samples) != 2 || ds.Samples[0].Rel != "crack/b.PNG" || ds.Samples[1].Rel != "free/a.jpg" {
		t.Fatalf("samples %+v", ds.Samples)
	}
	if len(ds.Classes) != 2 || ds.Classes[0] != "crack" || ds.Classes[1] != "free" {
		t.Fatalf("classes %v (the empty folder is skipped)", ds.Classes)
	}
	if err := ds.CheckClasses([]string{"free", "crack", "fray"}); err != nil {
		t.Fatalf("a subset of the labels is fine: %v", err)
	}
	err = ds.CheckClasses([]string{"free", "blowhole"})
	if err == nil || !strings.Contains(err.Error(), "crack") {
		t.Fatalf("unknown class: %v", err)
	}
	if _, err := ScanFolder(filepath.Join(root, "empty")); err == nil {
		t.Fatal("a folder without images is an error")
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
