package inference

import (
	"strings"
	"testing"
)

// replaceFields keeps a manifest's key order and every field it does not
// set, so a calibrated manifest diffs as its thresholds only.
func TestReplaceFields(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		fields    map[string]any
		want, err string
	}{
		{"replace in place", `{"b":1,"a":{"x":[1, 2]},"c":"s"}`, map[string]any{"a": map[string]int{"y": 3}},
			"{\n  \"b\": 1,\n  \"a\": {\n    \"y\": 3\n  },\n  \"c\": \"s\"\n}", ""},
		{"new keys at the end, sorted", `{"z":0}`, map[string]any{"m": 1, "b": true},
			"{\n  \"z\": 0,\n  \"b\": true,\n  \"m\": 1\n}", ""},
		{"empty object", `{}`, map[string]any{"a": nil}, "{\n  \"a\": null\n}", ""},
		{"not an object", `[1]`, nil, "", "not a JSON object"},
		{"a key twice", `{"a":1,"a":2}`, nil, "", "twice"},
		{"truncated", `{"a":1,`, nil, "", "EOF"},
	} {
		got, err := replaceFields([]byte(c.doc), c.fields)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}
