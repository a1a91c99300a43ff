package wire

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// slowSample decodes a sample with encoding/json alone (DecodeSample's
// general path, without the checks that follow it).
func slowSample(data []byte) (Envelope, Sample, error) {
	var s Sample
	e, err := decodeBody(data, TypeSample, &s)
	return e, s, err
}

// checkSameAsJSON: when the fast path takes a message, encoding/json reads
// the same envelope and sample from it.
func checkSameAsJSON(t *testing.T, data []byte) bool {
	t.Helper()
	fe, fs, ok := decodeSampleFast(data)
	if !ok {
		return false
	}
	se, ss, err := slowSample(data)
	if err != nil {
		t.Fatalf("fast path took what encoding/json refuses (%v): %.200q", err, data)
	}
	if !reflect.DeepEqual(fe, se) || !reflect.DeepEqual(fs, ss) {
		t.Fatalf("fast path differs from encoding/json:\nfast %+v\nslow %+v\n%.300q", fs, ss, data)
	}
	return true
}

func TestSampleCodecSameAsJSON(t *testing.T) {
	for _, size := range []int{1, 2, 3, 1000, 50 << 10} {
		s := bigSample(size)
		fast, err := Encode(sampleEnv, &s)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := encodeGeneric(sampleEnv, s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("size %d: Encode's fast path writes other bytes than encoding/json", size)
		}
		if !checkSameAsJSON(t, fast) {
			t.Fatalf("size %d: fast path did not take Encode's own output", size)
		}
	}
	// Messages the fast path must leave to encoding/json, or read the same.
	s := bigSample(300)
	good, _ := Encode(sampleEnv, &s)
	str := string(good)
	b64 := str[strings.LastIndex(str, `"data":"`)+8 : len(str)-4]
	variants := map[string]string{
		"trailing newline":      str + "\n",
		"spaces":                strings.Replace(str, `"data":"`, `"data": "`, 1),
		"escaped line break":    strings.Replace(str, b64, b64[:8]+`\n`+b64[8:], 1),
		"escaped slash":         strings.Replace(str, b64, strings.ReplaceAll(b64, "/", `\/`), 1),
		"data twice":            strings.Replace(str, `"image":{`, `"image":{"data":"AAAA",`, 1),
		"image twice":           strings.Replace(str, `"image":{`, `"image":{"format":"jpeg"},"image":{`, 1),
		"body twice":            strings.Replace(str, `"body":{`, `"body":{"class":"x"},"body":{`, 1),
		"data in note":          strings.Replace(str, `"class":`, `"note":"\",\"data\":\"AAAA\"}}}","class":`, 1),
		"not the image's data":  strings.Replace(str, `,"image":`, `,"inspection":{"data":"x"},"image":`, 1),
		"data in a later field": str[:len(str)-3] + `,"x":{"data":"AAAA"}}}`,
		"newer version":         strings.Replace(str, `"v":1`, `"v":2`, 1),
		"no version":            strings.Replace(str, `"v":1,`, ``, 1),
		"bad base64":            strings.Replace(str, b64, "!!!!"+b64[4:], 1),
		"short base64":          strings.Replace(str, b64, b64[4:], 1),
		"empty data":            strings.Replace(str, b64, "", 1),
		"bad sha256":            strings.Replace(str, s.Image.SHA256, strings.Repeat("0", 64), 1),
		"truncated":             str[:len(str)-1],
	}
	for name, v := range variants {
		took := checkSameAsJSON(t, []byte(v))
		fe, fs, ferr := DecodeSample([]byte(v))
		se, ss, serr := slowSample([]byte(v))
		if serr == nil {
			serr = ss.Validate()
		}
		if (ferr == nil) != (serr == nil) || !reflect.DeepEqual(fe, se) || !reflect.DeepEqual(fs, ss) {
			t.Errorf("%s (fast path %v): DecodeSample %v, encoding/json %v", name, took, ferr, serr)
		}
	}
}
