package rap

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// maxNameLen bounds toolset and tool names (RAP §3.2–3.3).
const maxNameLen = 128

// DecodeManifest parses and validates a toolset manifest (RAP §3.8): a
// name of 1–128 characters, an absolute http(s) endpoint, at least one tool,
// and for each tool a name matching ^[A-Za-z0-9_-]{1,128}$ that is unique in
// the toolset, a non-empty description and an inputSchema that is a JSON
// Schema object for an object argument. Errors wrap infinity.ErrInvalid and
// name the field.
func DecodeManifest(body []byte) (Manifest, error) {
	o, err := parseObject("manifest", body)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if m.Name, err = o.str("name", true); err != nil {
		return Manifest{}, err
	}
	if utf8.RuneCountInString(m.Name) > maxNameLen {
		return Manifest{}, o.fail("name", "is longer than %d characters", maxNameLen)
	}
	o.what = fmt.Sprintf("manifest %q", m.Name)
	if m.Description, err = o.str("description", false); err != nil {
		return Manifest{}, err
	}
	if m.Endpoint, err = o.str("endpoint", true); err != nil {
		return Manifest{}, err
	}
	if !absURL(m.Endpoint) {
		return Manifest{}, o.fail("endpoint", "must be an absolute http(s) URL, got %q", m.Endpoint)
	}
	if m.NeedsMigration, err = o.boolean("needsMigration"); err != nil {
		return Manifest{}, err
	}
	tools, err := o.array("tools", true)
	if err != nil {
		return Manifest{}, err
	}
	if len(tools) == 0 {
		return Manifest{}, o.fail("tools", "must hold at least one tool")
	}
	seen := make(map[string]bool, len(tools))
	for i, raw := range tools {
		t, err := decodeToolDef(fmt.Sprintf("%s tools[%d]", o.what, i), raw)
		if err != nil {
			return Manifest{}, err
		}
		if seen[t.Name] {
			return Manifest{}, o.fail("tools", "names %q twice", t.Name)
		}
		seen[t.Name] = true
		m.Tools = append(m.Tools, t)
	}
	return m, nil
}

// ValidToolName reports whether name is a strict RAP tool name:
// 1–128 characters of A–Z a–z 0–9 _ and -.
func ValidToolName(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func decodeToolDef(what string, raw json.RawMessage) (ToolDef, error) {
	o, err := parseObject(what, raw)
	if err != nil {
		return ToolDef{}, err
	}
	var t ToolDef
	if t.Name, err = o.str("name", true); err != nil {
		return ToolDef{}, err
	}
	if !ValidToolName(t.Name) {
		return ToolDef{}, o.fail("name", "%q must be 1-128 characters of A-Z a-z 0-9 _ -", t.Name)
	}
	o.what = fmt.Sprintf("%s (%s)", what, t.Name)
	if t.Description, err = o.str("description", true); err != nil {
		return ToolDef{}, err
	}
	if t.InputSchema, err = o.obj("inputSchema", true); err != nil {
		return ToolDef{}, err
	}
	if err := checkSchema(o, t.InputSchema); err != nil {
		return ToolDef{}, err
	}
	ann, err := o.obj("annotations", false)
	if err != nil {
		return ToolDef{}, err
	}
	if ann != nil {
		if err := json.Unmarshal(ann, &t.Annotations); err != nil {
			return ToolDef{}, o.fail("annotations", "must be an object")
		}
	}
	if t.DisplayScript, err = o.str("displayScript", false); err != nil {
		return ToolDef{}, err
	}
	return t, nil
}

// checkSchema checks the structural keywords of an input schema without a
// full JSON Schema implementation: $schema a string, type (if any) naming
// "object" since arguments are an object, properties an object of objects
// or booleans, required an array of strings.
func checkSchema(tool object, raw json.RawMessage) error {
	s, err := parseObject(tool.what+" inputSchema", raw)
	if err != nil {
		return err
	}
	if _, err := s.str("$schema", false); err != nil {
		return err
	}
	if s.has("type") {
		var one string
		var many []string
		switch {
		case json.Unmarshal(s.m["type"], &one) == nil && kind(s.m["type"]) == '"':
			many = []string{one}
		case kind(s.m["type"]) == '[' && json.Unmarshal(s.m["type"], &many) == nil:
		default:
			return s.fail("type", "must be a string or an array of strings")
		}
		object := false
		for _, t := range many {
			object = object || t == "object"
		}
		if !object {
			return s.fail("type", "must be \"object\": arguments are a JSON object")
		}
	}
	props, err := s.obj("properties", false)
	if err != nil {
		return err
	}
	if props != nil {
		var m map[string]json.RawMessage
		if json.Unmarshal(props, &m) != nil {
			return s.fail("properties", "must be an object")
		}
		for name, p := range m {
			if k := kind(p); k != '{' && k != 't' && k != 'f' {
				return s.fail("properties", "entry %q must be a schema (object or boolean)", name)
			}
		}
	}
	req, err := s.array("required", false)
	if err != nil {
		return err
	}
	for i, r := range req {
		if kind(r) != '"' {
			return s.fail("required", "item %d must be a string", i)
		}
	}
	return nil
}
