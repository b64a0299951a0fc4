package scripted

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/infinity-runtime/infinity"
)

// vars are the template values of one request.
type vars struct {
	thread, parent, root string
	depth                int
	stack                []infinity.ThreadID
	items                []infinity.Item
	now                  time.Time // the request's time, for $DATE and $TIME
}

func newVars(req infinity.CompletionRequest) vars {
	stack := req.Stack
	if len(stack) == 0 && req.Thread != "" {
		stack = []infinity.ThreadID{req.Thread}
	}
	v := vars{thread: string(req.Thread), stack: stack, items: req.Items, now: time.Now()}
	if n := len(stack); n > 0 {
		v.root = string(stack[0])
		v.depth = n - 1
		if n > 1 {
			v.parent = string(stack[n-2])
		}
	}
	return v
}

// expand replaces the template words in s, left to right.
func (v *vars) expand(s string) string {
	i := strings.IndexByte(s, '$')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	for ; i >= 0; i = strings.IndexByte(s, '$') {
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$THREAD"):
			b.WriteString(v.thread)
			s = s[len("$THREAD"):]
		case strings.HasPrefix(s, "$PARENT"):
			b.WriteString(v.parent)
			s = s[len("$PARENT"):]
		case strings.HasPrefix(s, "$ROOT"):
			b.WriteString(v.root)
			s = s[len("$ROOT"):]
		case strings.HasPrefix(s, "$DEPTH"):
			b.WriteString(strconv.Itoa(v.depth))
			s = s[len("$DEPTH"):]
		case strings.HasPrefix(s, "$CALL_ID("), strings.HasPrefix(s, "$DATE("), strings.HasPrefix(s, "$TIME("):
			name, arg, _ := strings.Cut(s[1:], "(")
			end := strings.IndexByte(arg, ')')
			if end < 0 {
				b.WriteByte('$')
				s = s[1:]
				continue
			}
			b.WriteString(v.function(name, arg[:end]))
			s = arg[end+1:]
		case strings.HasPrefix(s, "$STACK"):
			for k, id := range v.stack {
				if k > 0 {
					b.WriteByte('/')
				}
				b.WriteString(string(id))
			}
			s = s[len("$STACK"):]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
	b.WriteString(s)
	return b.String()
}

// function expands $CALL_ID(tool), $DATE(+dur,zone) and $TIME(+dur,zone);
// an argument it cannot read leaves the word as written, so that the tool
// that gets it says what is wrong.
func (v *vars) function(name, arg string) string {
	literal := "$" + name + "(" + arg + ")"
	if name == "CALL_ID" {
		for i := len(v.items) - 1; i >= 0; i-- {
			if c := v.items[i].Call; c != nil && c.Name == arg {
				return c.ID
			}
		}
		return literal
	}
	offset, zone, _ := strings.Cut(arg, ",")
	d, err := time.ParseDuration(strings.TrimPrefix(strings.TrimSpace(offset), "+"))
	if err != nil {
		return literal
	}
	loc, err := time.LoadLocation(strings.TrimSpace(zone))
	if err != nil {
		return literal
	}
	t := v.now.Add(d).In(loc)
	if name == "DATE" {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.TimeOnly)
}

// node is a parsed JSON value that keeps object keys in order.
type node struct {
	kind byte   // '{', '[', '"' or 'l' (a literal: number, true, false, null)
	raw  []byte // a literal's text
	str  string // a string's value
	keys []string
	vals []*node
}

// tmplArgs is a call's arguments, ready to render per request.
type tmplArgs struct {
	static []byte // compact arguments without templates
	tree   *node  // set when the arguments use templates
}

var emptyObject = []byte("{}")

// parseArgs checks that raw is a JSON object (or null/absent, meaning {})
// and prepares it for rendering.
func parseArgs(raw json.RawMessage) (tmplArgs, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return tmplArgs{static: emptyObject}, nil
	}
	if !json.Valid(raw) {
		return tmplArgs{}, errors.New("not valid JSON")
	}
	if raw[0] != '{' {
		return tmplArgs{}, errors.New("must be a JSON object")
	}
	if !bytes.Contains(raw, []byte("$")) && !bytes.Contains(raw, []byte(`\u`)) {
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return tmplArgs{}, err
		}
		return tmplArgs{static: b.Bytes()}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := parseNode(dec)
	if err != nil {
		return tmplArgs{}, err
	}
	return tmplArgs{tree: n}, nil
}

func parseNode(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: '{'}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := k.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", k)
				}
				v, err := parseNode(dec)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key)
				n.vals = append(n.vals, v)
			}
			_, err := dec.Token() // '}'
			return n, err
		case '[':
			n := &node{kind: '['}
			for dec.More() {
				v, err := parseNode(dec)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, v)
			}
			_, err := dec.Token() // ']'
			return n, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string:
		return &node{kind: '"', str: t}, nil
	case json.Number:
		return &node{kind: 'l', raw: []byte(t)}, nil
	case bool:
		return &node{kind: 'l', raw: []byte(strconv.FormatBool(t))}, nil
	case nil:
		return &node{kind: 'l', raw: []byte("null")}, nil
	}
	return nil, io.ErrUnexpectedEOF
}

// render returns the arguments for one request, always a fresh slice.
func (a tmplArgs) render(v *vars) json.RawMessage {
	if a.tree == nil {
		return bytes.Clone(a.static)
	}
	var b bytes.Buffer
	a.tree.render(&b, v)
	return b.Bytes()
}

func (n *node) render(b *bytes.Buffer, v *vars) {
	switch n.kind {
	case '{':
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			n.vals[i].render(b, v)
		}
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, e := range n.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			e.render(b, v)
		}
		b.WriteByte(']')
	case '"':
		if n.str == "$STACK" {
			b.WriteByte('[')
			for i, id := range v.stack {
				if i > 0 {
					b.WriteByte(',')
				}
				writeString(b, string(id))
			}
			b.WriteByte(']')
			return
		}
		writeString(b, v.expand(n.str))
	default:
		b.Write(n.raw)
	}
}

// writeString writes s as a JSON string, escaping like encoding/json
// without its HTML escaping: invalid UTF-8 becomes U+FFFD.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b.WriteString(s[start:i])
			switch r {
			case utf8.RuneError:
				b.WriteString(`\ufffd`)
			case '\u2028':
				b.WriteString(`\u2028`)
			default:
				b.WriteString(`\u2029`)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
