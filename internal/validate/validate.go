package validate

import (
	"fmt"
	"slices"
	"strings"
)

// FieldError is one invalid configuration value.
type FieldError struct {
	Field   string   // dotted path, e.g. "cameras[0].source.kind"
	Value   any      // the value given (nil when the field is missing)
	Problem string   // what is wrong, e.g. "is not allowed", "must be > 0"
	Allowed []string // the allowed values, when they form a list
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	b.WriteString(": ")
	if e.Value != nil {
		fmt.Fprintf(&b, "%#v ", e.Value)
	}
	b.WriteString(e.Problem)
	if len(e.Allowed) > 0 {
		b.WriteString("; use one of: ")
		b.WriteString(strings.Join(e.Allowed, ", "))
	}
	return b.String()
}

// Errors is a list of field errors; it is an error itself when non-empty.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns es as an error, or nil when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// V collects errors under a field-path prefix. The zero value is ready to use.
type V struct {
	prefix string
	errs   *Errors
}

// New returns a collector whose fields are reported under prefix
// ("" for the root).
func New(prefix string) *V { return &V{prefix: prefix, errs: new(Errors)} }

// At returns a collector for a nested field; errors go to the same list.
func (v *V) At(field string) *V {
	v.init()
	return &V{prefix: v.path(field), errs: v.errs}
}

// Index returns a collector for element i of a list field.
func (v *V) Index(field string, i int) *V {
	v.init()
	return &V{prefix: fmt.Sprintf("%s[%d]", v.path(field), i), errs: v.errs}
}

func (v *V) init() {
	if v.errs == nil {
		v.errs = new(Errors)
	}
}

func (v *V) path(field string) string {
	if v.prefix == "" {
		return field
	}
	if field == "" {
		return v.prefix
	}
	return v.prefix + "." + field
}

// Add records a problem with field.
func (v *V) Add(field string, value any, problem string, allowed ...string) {
	v.init()
	*v.errs = append(*v.errs, &FieldError{Field: v.path(field), Value: value, Problem: problem, Allowed: allowed})
}

// Required records an error when value is empty.
func (v *V) Required(field, value, what string) {
	if strings.TrimSpace(value) == "" {
		v.Add(field, nil, "is required: "+what)
	}
}

// OneOf records an error when value is not among allowed.
func (v *V) OneOf(field, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.Add(field, value, "is not allowed", allowed...)
	}
}

// Range records an error when value is outside [lo, hi].
func Range[T int | int64 | float64](v *V, field string, value, lo, hi T) {
	if value < lo || value > hi {
		v.Add(field, value, fmt.Sprintf("is out of range; allowed: %v to %v", lo, hi))
	}
}

// Errors returns everything collected so far (shared with nested collectors).
func (v *V) Errors() Errors {
	v.init()
	return *v.errs
}

// Err returns the collected errors as one error, or nil.
func (v *V) Err() error { return v.Errors().Err() }
