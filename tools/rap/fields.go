package rap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/infinity-runtime/infinity"
)

// object is a decoded JSON object whose fields are checked one by one, so
// that a missing field, a null and an empty value can be told apart and
// every error names its field.
type object struct {
	what string
	m    map[string]json.RawMessage
}

func parseObject(what string, b []byte) (object, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return object{}, fmt.Errorf("%s: not a JSON object: %w", what, infinity.ErrInvalid)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return object{}, fmt.Errorf("%s: %w: %v", what, infinity.ErrInvalid, err)
	}
	return object{what: what, m: m}, nil
}

func (o object) fail(field, format string, args ...any) error {
	return fmt.Errorf("%s: field %q %s: %w", o.what, field, fmt.Sprintf(format, args...), infinity.ErrInvalid)
}

// has reports whether field is present and not null.
func (o object) has(field string) bool {
	raw, ok := o.m[field]
	return ok && !bytes.Equal(raw, []byte("null"))
}

func kind(raw json.RawMessage) byte {
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// str reads a string field; required fields must be present and non-empty.
func (o object) str(field string, required bool) (string, error) {
	if !o.has(field) {
		if required {
			return "", o.fail(field, "is required")
		}
		return "", nil
	}
	raw := o.m[field]
	var s string
	if kind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return "", o.fail(field, "must be a string")
	}
	if required && s == "" {
		return "", o.fail(field, "must not be empty")
	}
	return s, nil
}

// optStr reads an optional string that may be null or absent (nil).
func (o object) optStr(field string) (*string, error) {
	if !o.has(field) {
		return nil, nil
	}
	s, err := o.str(field, false)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (o object) boolean(field string) (bool, error) {
	if !o.has(field) {
		return false, nil
	}
	switch string(o.m[field]) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, o.fail(field, "must be a boolean")
}

func (o object) integer(field string) (int, error) {
	if !o.has(field) {
		return 0, o.fail(field, "is required")
	}
	raw := o.m[field]
	var n json.Number
	if k := kind(raw); (k < '0' || k > '9') && k != '-' || json.Unmarshal(raw, &n) != nil {
		return 0, o.fail(field, "must be an integer")
	}
	i, err := n.Int64()
	if err != nil || i != int64(int(i)) {
		return 0, o.fail(field, "must be an integer")
	}
	return int(i), nil
}

// array returns the elements of an array field (nil when absent or null).
func (o object) array(field string, required bool) ([]json.RawMessage, error) {
	if !o.has(field) {
		if required {
			return nil, o.fail(field, "is required")
		}
		return nil, nil
	}
	var a []json.RawMessage
	if kind(o.m[field]) != '[' || json.Unmarshal(o.m[field], &a) != nil {
		return nil, o.fail(field, "must be an array")
	}
	return a, nil
}

// obj returns an object field's raw bytes, checking it is an object.
func (o object) obj(field string, required bool) (json.RawMessage, error) {
	if !o.has(field) {
		if required {
			return nil, o.fail(field, "is required")
		}
		return nil, nil
	}
	if kind(o.m[field]) != '{' {
		return nil, o.fail(field, "must be an object")
	}
	return o.m[field], nil
}

// absURL reports whether s is an absolute http or https URL with a host.
func absURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
