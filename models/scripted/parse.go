package scripted

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Parse decodes a JSON script strictly and validates it. Unknown fields,
// values of the wrong type and trailing data are errors that name the field
// by its path (for example rules[2].when.dept) and wrap infinity.ErrInvalid.
// Defaults are applied by New, not by Parse.
func Parse(b []byte) (Script, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Script{}, syntaxError(b, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Script{}, invalidf("parse: trailing data after the script at offset %d", dec.InputOffset())
	}
	if doc == nil {
		return Script{}, invalidf("parse: the script is null; want an object")
	}
	if err := check("", reflect.TypeFor[Script](), doc); err != nil {
		return Script{}, err
	}
	var s Script
	if err := json.Unmarshal(b, &s); err != nil { // check found nothing, so this is unexpected
		return Script{}, invalidf("parse: %v", err)
	}
	if err := s.Validate(); err != nil {
		return Script{}, err
	}
	return s, nil
}

// Load reads and parses the script file at path.
func Load(path string) (Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Script{}, fmt.Errorf("scripted: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return Script{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func syntaxError(b []byte, err error) error {
	if errors.Is(err, io.EOF) {
		return invalidf("parse: empty input; want a JSON object")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
		return invalidf("parse: line %d (offset %d): %v", line, se.Offset, se)
	}
	return invalidf("parse: %v", err)
}

var (
	durationType = reflect.TypeFor[Duration]()
	rawType      = reflect.TypeFor[json.RawMessage]()
)

// check verifies that the generic JSON value v (decoded with UseNumber) fits
// type t exactly: known field names with their exact spelling, and the
// right JSON type for each value. null fits anything, as in encoding/json.
func check(path string, t reflect.Type, v any) error {
	if v == nil {
		return nil
	}
	at := func() string {
		if path == "" {
			return "the script"
		}
		return path
	}
	mismatch := func(want string) error {
		return invalidf("parse: %s: want %s, got %s", at(), want, jsonType(v))
	}
	switch t {
	case rawType:
		return nil // call args: checked by Validate
	case durationType:
		s, ok := v.(string)
		if !ok {
			return mismatch(`a duration string such as "150ms"`)
		}
		if _, err := time.ParseDuration(s); err != nil {
			return invalidf("parse: %s: %q is not a duration such as \"150ms\"", at(), s)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return check(path, t.Elem(), v)
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return mismatch("an object")
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			f, ok := fields[k]
			if !ok {
				return invalidf("parse: %s: unknown field %q (known: %s)", at(), k, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			}
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			if err := check(sub, f.Type, obj[k]); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return mismatch("an array")
		}
		for i, e := range arr {
			if err := check(fmt.Sprintf("%s[%d]", path, i), t.Elem(), e); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return mismatch("a string")
		}
		return nil
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return mismatch("true or false")
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch("an integer")
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return invalidf("parse: %s: %s is not an integer in range", at(), n)
		}
		return nil
	}
	return invalidf("parse: %s: unsupported field type %s", at(), t)
}

// jsonFields maps the JSON names of t's fields to the fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField)
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f
	}
	return m
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}
