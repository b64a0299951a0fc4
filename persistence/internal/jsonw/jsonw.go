// Package jsonw is a hand-written JSON encoder for the values the local
// stores write on every slice: items, outgoing entries, queued messages and
// commits.
//
// It writes what
// encoding/json would, field for field, so that json.Unmarshal reads back
// the same values; the bytes differ only in escaping (no HTML escaping of
// <, > and &). encoding/json spent most of its time in reflection and
// allocated a copy of every record; this encoder appends to a reused buffer.
//
// Types it does not spell out itself (thread infos, summaries, states,
// synthetic markers, display segments, invocations) go through json.Marshal
// as values of their own. The spelled-out types are checked against the
// field list this file was written for (OK): if a field is added,
// renamed or retagged, callers write those types with json.Marshal until
// this encoder is updated, and TestCoversTypes fails.
package jsonw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/infinity-runtime/infinity"
)

// W appends JSON to Buf; the first error sticks in Err.
type W struct {
	Buf []byte
	Err error
	// Slow asks callers to write the nested record types with json.Marshal
	// (of copies: see Value), for when OK is false.
	Slow bool
}

// Raw appends s as it is.
func (w *W) Raw(s string) { w.Buf = append(w.Buf, s...) }

// Byte appends c.
func (w *W) Byte(c byte) { w.Buf = append(w.Buf, c) }

// Key writes `,"name":` (without the comma for the first field).
func (w *W) Key(first *bool, name string) {
	if !*first {
		w.Buf = append(w.Buf, ',')
	}
	*first = false
	w.Buf = append(w.Buf, '"')
	w.Buf = append(w.Buf, name...)
	w.Buf = append(w.Buf, '"', ':')
}

const hexDigits = "0123456789abcdef"

// Str writes s as a JSON string the way encoding/json does (invalid UTF-8
// becomes U+FFFD; U+2028 and U+2029 are escaped), without HTML escaping.
func (w *W) Str(s string) {
	b := append(w.Buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	w.Buf = append(b, '"')
}

// Int writes n.
func (w *W) Int(n int64) { w.Buf = strconv.AppendInt(w.Buf, n, 10) }

// Uint writes n.
func (w *W) Uint(n uint64) { w.Buf = strconv.AppendUint(w.Buf, n, 10) }

// Bool writes v.
func (w *W) Bool(v bool) {
	if v {
		w.Raw("true")
	} else {
		w.Raw("false")
	}
}

// RawJSON writes a json.RawMessage as encoding/json does: null when empty,
// else compacted, and an error when it is not valid JSON.
func (w *W) RawJSON(m json.RawMessage) {
	if len(m) == 0 {
		w.Raw("null")
		return
	}
	n := len(w.Buf)
	b, err := appendCompact(w.Buf, m)
	if err != nil {
		w.Buf = w.Buf[:n]
		w.Fail(fmt.Errorf("json: error calling MarshalJSON for type json.RawMessage: %w", err))
		return
	}
	w.Buf = b
}

// appendCompact appends src, compacted, to dst; an error if src is not
// valid JSON (json.Compact, without its bytes.Buffer when src has no
// insignificant space).
func appendCompact(dst, src []byte) ([]byte, error) {
	if !json.Valid(src) {
		return dst, fmt.Errorf("invalid JSON %.40q", string(src)) // a copy: src does not escape
	}
	if !hasSpace(src) {
		return append(dst, src...), nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, src); err != nil {
		return dst, err
	}
	return append(dst, b.Bytes()...), nil
}

// hasSpace reports whether valid JSON src has white space outside its
// strings.
func hasSpace(src []byte) bool {
	inStr := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case ' ', '\t', '\n', '\r':
			return true
		}
	}
	return false
}

// Time writes t as time.Time.MarshalJSON does.
func (w *W) Time(t time.Time) {
	w.Byte('"')
	b, err := t.AppendText(w.Buf)
	if err != nil {
		w.Fail(fmt.Errorf("json: error calling MarshalJSON for type time.Time: %w", err))
		return
	}
	w.Buf = append(b, '"')
}

// Value writes v with json.Marshal. Callers pass values, not pointers
// into the record: what goes into an interface escapes, and escape
// analysis would then move every record (and the commit it points to) to
// the heap.
func (w *W) Value(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.Fail(err)
		return
	}
	w.Buf = append(w.Buf, b...)
}

// Fail records err unless an error is recorded already.
func (w *W) Fail(err error) {
	if w.Err == nil {
		w.Err = err
	}
}

// strList writes a list of strings (ids), or null for a nil list.
func strList[S ~string](w *W, ss []S) {
	if ss == nil {
		w.Raw("null")
		return
	}
	w.Byte('[')
	for i, s := range ss {
		if i > 0 {
			w.Byte(',')
		}
		w.Str(string(s))
	}
	w.Byte(']')
}

// Strs, ThreadIDs and MsgIDs write a list of strings, or null for nil.
func (w *W) Strs(ss []string)                  { strList(w, ss) }
func (w *W) ThreadIDs(ids []infinity.ThreadID) { strList(w, ids) }
func (w *W) MsgIDs(ids []infinity.MessageID)   { strList(w, ids) }

// Commit writes an infinity.Commit (no JSON tags: Go field names, no
// omitempty).
func (w *W) Commit(c *infinity.Commit) {
	w.Raw(`{"Thread":`)
	w.Str(string(c.Thread))
	w.Raw(`,"Expected":`)
	w.Int(int64(c.Expected))
	w.Raw(`,"Items":`)
	w.Items(c.Items)
	w.Raw(`,"Applied":`)
	w.MsgIDs(c.Applied)
	w.Raw(`,"Outbox":`)
	w.Outbox(c.Outbox)
	w.Raw(`,"Create":`)
	if c.Create == nil {
		w.Raw("null")
	} else {
		w.Value(c.Create)
	}
	w.Raw(`,"Close":`)
	w.ThreadIDs(c.Close)
	w.Raw(`,"Summary":`)
	if c.Summary == nil {
		w.Raw("null")
	} else {
		w.Value(*c.Summary)
	}
	w.Byte('}')
}

// Items writes a list of items, or null for nil.
func (w *W) Items(items []infinity.Item) {
	if items == nil {
		w.Raw("null")
		return
	}
	w.Byte('[')
	for i := range items {
		if i > 0 {
			w.Byte(',')
		}
		w.Item(&items[i])
	}
	w.Byte(']')
}

// Item writes one history item.
func (w *W) Item(it *infinity.Item) {
	w.Raw(`{"id":`)
	w.Str(it.ID)
	w.Raw(`,"kind":`)
	w.Str(it.Kind.String()) // ItemKind.MarshalText
	if it.Text != "" {
		w.Raw(`,"text":`)
		w.Str(it.Text)
	}
	if c := it.Call; c != nil {
		w.Raw(`,"call":`)
		w.Call(c)
	}
	if r := it.Result; r != nil {
		w.Raw(`,"result":{"call_id":`)
		w.Str(r.CallID)
		if len(r.Parts) > 0 {
			w.Raw(`,"parts":`)
			w.Parts(r.Parts)
		}
		if r.IsError {
			w.Raw(`,"is_error":true`)
		}
		if r.State != 0 {
			w.Raw(`,"state":`)
			w.Uint(uint64(r.State))
		}
		if len(r.Display) > 0 {
			w.Raw(`,"display":`)
			w.Value(r.Display)
		}
		if r.Subscription {
			w.Raw(`,"subscription":true`)
		}
		w.Byte('}')
	}
	if u := it.Usage; u != nil {
		w.Raw(`,"usage":{"input":`)
		w.Int(int64(u.Input))
		w.Raw(`,"output":`)
		w.Int(int64(u.Output))
		w.Byte('}')
	}
	if it.Model != "" {
		w.Raw(`,"model":`)
		w.Str(it.Model)
	}
	if it.Budget != nil {
		w.Raw(`,"budget":`)
		w.Value(*it.Budget)
	}
	if it.Notice != "" {
		w.Raw(`,"notice":`)
		w.Str(it.Notice)
	}
	w.Raw(`,"at":`)
	w.Time(it.At)
	w.Byte('}')
}

// Call writes a tool call.
func (w *W) Call(c *infinity.ToolCall) {
	w.Raw(`{"id":`)
	w.Str(c.ID)
	w.Raw(`,"name":`)
	w.Str(c.Name)
	w.Raw(`,"args":`)
	w.RawJSON(c.Args)
	w.Byte('}')
}

// Parts writes result parts.
func (w *W) Parts(ps []infinity.Part) {
	w.Byte('[')
	for i := range ps {
		p := &ps[i]
		if i > 0 {
			w.Byte(',')
		}
		w.Raw(`{"type":`)
		w.Str(p.Type)
		if p.Text != "" {
			w.Raw(`,"text":`)
			w.Str(p.Text)
		}
		if p.Data != "" {
			w.Raw(`,"data":`)
			w.Str(p.Data)
		}
		if p.MediaType != "" {
			w.Raw(`,"media_type":`)
			w.Str(p.MediaType)
		}
		w.Byte('}')
	}
	w.Byte(']')
}

// Outbox writes a list of outgoing entries, or null for nil.
func (w *W) Outbox(out []infinity.Outgoing) {
	if out == nil {
		w.Raw("null")
		return
	}
	w.Byte('[')
	for i := range out {
		o := &out[i]
		if i > 0 {
			w.Byte(',')
		}
		w.Raw(`{"id":`)
		w.Str(o.ID)
		if o.Message != nil {
			w.Raw(`,"message":`)
			w.Message(o.Message)
		}
		if !o.At.IsZero() {
			w.Raw(`,"at":`)
			w.Time(o.At)
		}
		if o.Invoke != nil {
			w.Raw(`,"invoke":`)
			w.Value(*o.Invoke)
		}
		w.Byte('}')
	}
	w.Byte(']')
}

// Queued writes a queued message.
func (w *W) Queued(q *infinity.Queued) {
	w.Raw(`{"message":`)
	w.Message(&q.Message)
	if !q.At.IsZero() {
		w.Raw(`,"at":`)
		w.Time(q.At)
	}
	w.Byte('}')
}

// Message writes an input message.
func (w *W) Message(m *infinity.InputMessage) {
	first := true
	w.Byte('{')
	if m.ID != "" {
		w.Key(&first, "id")
		w.Str(string(m.ID))
	}
	w.Key(&first, "group_id")
	w.Str(string(m.GroupID))
	w.Key(&first, "content")
	w.Content(&m.Content)
	if len(m.Metadata) > 0 {
		w.Key(&first, "metadata")
		w.RawJSON(m.Metadata)
	}
	if m.Synthetic != nil {
		w.Key(&first, "synthetic")
		w.Value(*m.Synthetic)
	}
	if len(m.DisplayAs) > 0 {
		w.Key(&first, "display_as")
		w.Value(m.DisplayAs)
	}
	if m.Budget != nil {
		w.Key(&first, "budget")
		w.Value(*m.Budget)
	}
	if m.Subscription {
		w.Key(&first, "subscription")
		w.Bool(true)
	}
	w.Byte('}')
}

// Content writes a message's content.
func (w *W) Content(c *infinity.Content) {
	w.Raw(`{"type":`)
	w.Str(string(c.Type))
	if c.Text != "" {
		w.Raw(`,"text":`)
		w.Str(c.Text)
	}
	if c.ID != "" {
		w.Raw(`,"id":`)
		w.Str(c.ID)
	}
	if c.CallID != "" {
		w.Raw(`,"call_id":`)
		w.Str(c.CallID)
	}
	if len(c.Parts) > 0 {
		w.Raw(`,"content":`)
		w.Parts(c.Parts)
	}
	if c.AuthURL != "" {
		w.Raw(`,"auth_url":`)
		w.Str(c.AuthURL)
	}
	if c.Prompt != "" {
		w.Raw(`,"prompt":`)
		w.Str(c.Prompt)
	}
	if len(c.Choices) > 0 {
		w.Raw(`,"choices":`)
		w.Strs(c.Choices)
	}
	if c.Default != 0 {
		w.Raw(`,"default":`)
		w.Int(int64(c.Default))
	}
	if c.ResponseURL != "" {
		w.Raw(`,"response_url":`)
		w.Str(c.ResponseURL)
	}
	w.Byte('}')
}

// Fields lists, per type the encoder spells out, every field as
// "Name type tag", in order. OK is false when a type differs.
var Fields = map[reflect.Type][]string{
	reflect.TypeFor[infinity.Commit]():       {"Thread infinity.ThreadID ", "Expected int ", "Items []infinity.Item ", "Applied []infinity.MessageID ", "Outbox []infinity.Outgoing ", "Create []infinity.ThreadInfo ", "Close []infinity.ThreadID ", "Summary *infinity.Summary "},
	reflect.TypeFor[infinity.Item]():         {"ID string id", "Kind infinity.ItemKind kind", "Text string text,omitempty", "Call *infinity.ToolCall call,omitempty", "Result *infinity.ToolResult result,omitempty", "Usage *infinity.Usage usage,omitempty", "Model string model,omitempty", "Budget *infinity.Budget budget,omitempty", "Notice string notice,omitempty", "At time.Time at"},
	reflect.TypeFor[infinity.ToolCall]():     {"ID string id", "Name string name", "Args json.RawMessage args"},
	reflect.TypeFor[infinity.ToolResult]():   {"CallID string call_id", "Parts []infinity.Part parts,omitempty", "IsError bool is_error,omitempty", "State infinity.ResultState state,omitempty", "Display []infinity.DisplaySegment display,omitempty", "Subscription bool subscription,omitempty"},
	reflect.TypeFor[infinity.Usage]():        {"Input int input", "Output int output"},
	reflect.TypeFor[infinity.Part]():         {"Type string type", "Text string text,omitempty", "Data string data,omitempty", "MediaType string media_type,omitempty"},
	reflect.TypeFor[infinity.Outgoing]():     {"ID string id", "Message *infinity.InputMessage message,omitempty", "At time.Time at,omitzero", "Invoke *infinity.Invocation invoke,omitempty"},
	reflect.TypeFor[infinity.Queued]():       {"Message infinity.InputMessage message", "At time.Time at,omitzero"},
	reflect.TypeFor[infinity.InputMessage](): {"ID infinity.MessageID id,omitempty", "GroupID infinity.ThreadID group_id", "Content infinity.Content content", "Metadata json.RawMessage metadata,omitempty", "Synthetic *infinity.Synthetic synthetic,omitempty", "DisplayAs []infinity.DisplaySegment display_as,omitempty", "Budget *infinity.Budget budget,omitempty", "Subscription bool subscription,omitempty"},
	reflect.TypeFor[infinity.Content]():      {"Type infinity.ContentType type", "Text string text,omitempty", "ID string id,omitempty", "CallID string call_id,omitempty", "Parts []infinity.Part content,omitempty", "AuthURL string auth_url,omitempty", "Prompt string prompt,omitempty", "Choices []string choices,omitempty", "Default int default,omitempty", "ResponseURL string response_url,omitempty"},
}

// OK reports whether every type the encoder spells out still has the
// fields it was written for, and none marshals itself.
var OK = mismatch() == ""

// Mismatch describes the first difference between the struct types of
// fields and their field lists ("" when there is none): a package that
// spells out types of its own with W checks them with it.
func Mismatch(fields map[reflect.Type][]string) string {
	marshaler := reflect.TypeFor[json.Marshaler]()
	textMarshaler := reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()
	for t, want := range fields {
		if t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler) ||
			t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
			return t.String() + " marshals itself"
		}
		if t.NumField() != len(want) {
			return fmt.Sprintf("%s has %d fields, the encoder knows %d", t, t.NumField(), len(want))
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if got := f.Name + " " + f.Type.String() + " " + f.Tag.Get("json"); got != want[i] {
				return fmt.Sprintf("%s field %d is %q, the encoder knows %q", t, i, got, want[i])
			}
		}
	}
	return ""
}

// Mismatch for the encoder's own types, and the scalars it writes directly.
func mismatch() string {
	if m := Mismatch(Fields); m != "" {
		return m
	}
	marshaler := reflect.TypeFor[json.Marshaler]()
	textMarshaler := reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()
	// Scalars written directly: their kinds, and ItemKind's text.
	for t, k := range map[reflect.Type]reflect.Kind{
		reflect.TypeFor[infinity.ThreadID](): reflect.String, reflect.TypeFor[infinity.MessageID](): reflect.String,
		reflect.TypeFor[infinity.ContentType](): reflect.String, reflect.TypeFor[infinity.ResultState](): reflect.Uint8,
		reflect.TypeFor[infinity.Version](): reflect.Uint64, reflect.TypeFor[infinity.ItemKind](): reflect.Uint8,
	} {
		if t.Kind() != k {
			return fmt.Sprintf("%s is a %s", t, t.Kind())
		}
		if t != reflect.TypeFor[infinity.ItemKind]() && (t.Implements(marshaler) || t.Implements(textMarshaler) ||
			reflect.PointerTo(t).Implements(marshaler) || reflect.PointerTo(t).Implements(textMarshaler)) {
			return t.String() + " marshals itself"
		}
	}
	for k := range infinity.ItemKind(255) {
		b, err := infinity.ItemKind(k).MarshalText()
		if err != nil || string(b) != infinity.ItemKind(k).String() {
			return "ItemKind.MarshalText is not String"
		}
	}
	return ""
}
