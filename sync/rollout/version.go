package rollout

import (
	"strconv"
	"strings"
)

// CompareVersions orders two model versions: -1 when a is older than b,
// 0 when equal, +1 when newer. Versions are compared as dotted numbers
// ("1.10.0" > "1.9.2", a leading "v" ignored); a suffix after '-' or '+'
// (e.g. "0.1.0-fp32") marks a pre-release that sorts before the bare
// version, and pre-release suffixes compare part by part, numerically
// where both parts are numbers. Non-numeric parts compare as strings.
func CompareVersions(a, b string) int {
	a, b = strings.TrimPrefix(a, "v"), strings.TrimPrefix(b, "v")
	ca, pa := splitPre(a)
	cb, pb := splitPre(b)
	if c := compareParts(strings.Split(ca, "."), strings.Split(cb, ".")); c != 0 {
		return c
	}
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	return compareParts(strings.Split(pa, "."), strings.Split(pb, "."))
}

func splitPre(v string) (core, pre string) {
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		return v[:i], v[i+1:]
	}
	return v, ""
}

func compareParts(a, b []string) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		nx, ex := strconv.ParseUint(orZero(x), 10, 64)
		ny, ey := strconv.ParseUint(orZero(y), 10, 64)
		switch {
		case ex == nil && ey == nil:
			if nx != ny {
				if nx < ny {
					return -1
				}
				return 1
			}
		case ex == nil: // numbers sort before words
			return -1
		case ey == nil:
			return 1
		default:
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		}
	}
	return 0
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
