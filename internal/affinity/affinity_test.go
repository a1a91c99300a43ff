package affinity

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		out  string
	}{
		{"", nil, ""},
		{"0", []int{0}, "0"},
		{"2-3", []int{2, 3}, "2-3"},
		{"0,4-5", []int{0, 4, 5}, "0,4-5"},
		{" 5, 1 ,3-4,1 ", []int{1, 3, 4, 5}, "1,3-5"},
		{"7-7", []int{7}, "7"},
	} {
		got, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Parse(%q) = %v, want %v", c.in, got, c.want)
		}
		if f := Format(got); f != c.out {
			t.Errorf("Format(%v) = %q, want %q", got, f, c.out)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"a":     `"a" is not a CPU number`,
		"1-":    `"" is not a CPU number`,
		"-1":    `"" is not a CPU number`,
		"3-1":   "runs backwards",
		"0,,1":  `"" is not a CPU number`,
		"99999": "beyond 1023",
	} {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestCheck(t *testing.T) {
	allowed := []int{0, 1, 2, 3}
	for _, c := range []struct {
		cpus []int
		want string
	}{
		{nil, ""},
		{[]int{0}, ""},
		{[]int{1, 2, 3}, ""},
		{[]int{4}, "CPU 4 is not one this process may run on (allowed: 0-3)"},
		{[]int{0, 1, 2, 3}, "would leave no CPU for the rest of the line"},
	} {
		err := Check(c.cpus, allowed)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Check(%v) = %v, want %q", c.cpus, err, c.want)
		}
	}
}

func TestORTAffinities(t *testing.T) {
	for _, c := range []struct {
		cpus    []int
		threads int
		want    string
	}{
		{[]int{0}, 1, ""},
		{[]int{2, 3}, 2, "3-4"},
		{[]int{0, 2, 3}, 3, "1,3-4;1,3-4"},
		{nil, 4, ""},
	} {
		if got := ORTAffinities(c.cpus, c.threads); got != c.want {
			t.Errorf("ORTAffinities(%v, %d) = %q, want %q", c.cpus, c.threads, got, c.want)
		}
	}
}

// The 2-vCPU development VM's /proc/interrupts: the disk (virtio1-req.0)
// interrupts CPU 1, the network mostly CPU 0.
func TestDeviceInterruptsAndQuietest(t *testing.T) {
	text, err := os.ReadFile("testdata/interrupts-2cpu.txt")
	if err != nil {
		t.Fatal(err)
	}
	counts, err := DeviceInterrupts(string(text), []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if counts[1] <= counts[0] {
		t.Fatalf("device interrupts %v: want CPU 1 (the disk's) busier", counts)
	}
	if got := Quietest([]int{0, 1}, counts, 1); !reflect.DeepEqual(got, []int{0}) {
		t.Errorf("Quietest = %v, want [0]", got)
	}
	// Only CPU 1 allowed of the two: nothing left for the line.
	if got := Quietest([]int{1}, counts[1:], 1); got != nil {
		t.Errorf("Quietest on one CPU = %v, want none", got)
	}
	if _, err := DeviceInterrupts("garbage\n", []int{0}); err == nil {
		t.Error("a text without a CPUn header was accepted")
	}
}

func TestQuietest(t *testing.T) {
	for _, c := range []struct {
		allowed []int
		counts  []uint64
		n       int
		want    []int
	}{
		{[]int{0, 1, 2, 3}, []uint64{900, 5, 5, 700}, 2, []int{1, 2}},
		{[]int{0, 1, 2, 3}, []uint64{0, 0, 0, 0}, 1, []int{3}}, // ties: the highest
		{[]int{0, 1, 2, 3}, []uint64{1, 2, 3, 4}, 3, []int{0, 1, 2}},
		{[]int{0, 1, 2, 3}, []uint64{1, 2, 3, 4}, 4, nil}, // none left for the line: no pinning
		{[]int{4, 6}, []uint64{10, 1}, 1, []int{6}},
		{[]int{0, 1}, nil, 0, nil},
	} {
		if got := Quietest(c.allowed, c.counts, c.n); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Quietest(%v, %v, %d) = %v, want %v", c.allowed, c.counts, c.n, got, c.want)
		}
	}
}
