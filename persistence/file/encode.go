package file

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

// A hand-written JSON encoder for the records slices write (commit, inbox
// put, processed mark, mark sent) and for snapshot threads. It writes what
// encoding/json would, field for field, so that json.Unmarshal reads back
// the same values; the bytes differ only in escaping (no HTML escaping of
// <, > and &). encoding/json spent most of its time in reflection and
// allocated a copy of every record; this encoder appends to a reused buffer.
//
// Types it does not spell out itself (thread infos, summaries, states,
// synthetic markers, display segments, invocations) go through json.Marshal
// as values of their own. The spelled-out types are checked against the
// field list this file was written for (fastTypesOK): if a field is added,
// renamed or retagged, every record goes through json.Marshal until this
// encoder is updated, and TestFastEncoderCoversTypes fails.

// jw appends JSON to buf; the first error sticks.
type jw struct {
	buf []byte
	err error
	// slow writes the nested record types with json.Marshal (of copies:
	// see value), for when fastTypesOK is false.
	slow bool
}

func (w *jw) raw(s string) { w.buf = append(w.buf, s...) }

func (w *jw) byte(c byte) { w.buf = append(w.buf, c) }

// key writes `,"name":` (without the comma for the first field).
func (w *jw) key(first *bool, name string) {
	if !*first {
		w.buf = append(w.buf, ',')
	}
	*first = false
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '"', ':')
}

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string the way encoding/json does (invalid UTF-8
// becomes U+FFFD; U+2028 and U+2029 are escaped), without HTML escaping.
func (w *jw) str(s string) {
	b := append(w.buf, '"')
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
	w.buf = append(b, '"')
}

func (w *jw) int(n int64) { w.buf = strconv.AppendInt(w.buf, n, 10) }

func (w *jw) uint(n uint64) { w.buf = strconv.AppendUint(w.buf, n, 10) }

func (w *jw) bool(v bool) {
	if v {
		w.raw("true")
	} else {
		w.raw("false")
	}
}

// rawJSON writes a json.RawMessage as encoding/json does: null when empty,
// else compacted, and an error when it is not valid JSON.
func (w *jw) rawJSON(m json.RawMessage) {
	if len(m) == 0 {
		w.raw("null")
		return
	}
	n := len(w.buf)
	b, err := appendCompact(w.buf, m)
	if err != nil {
		w.buf = w.buf[:n]
		w.fail(fmt.Errorf("json: error calling MarshalJSON for type json.RawMessage: %w", err))
		return
	}
	w.buf = b
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

func (w *jw) time(t time.Time) {
	w.byte('"')
	b, err := t.AppendText(w.buf)
	if err != nil {
		w.fail(fmt.Errorf("json: error calling MarshalJSON for type time.Time: %w", err))
		return
	}
	w.buf = append(b, '"')
}

// value writes v with json.Marshal. Callers pass values, not pointers
// into the record: what goes into an interface escapes, and escape
// analysis would then move every record (and the commit it points to) to
// the heap.
func (w *jw) value(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.fail(err)
		return
	}
	w.buf = append(w.buf, b...)
}

func (w *jw) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// strList writes a list of strings (ids), or null for a nil list.
func strList[S ~string](w *jw, ss []S) {
	if ss == nil {
		w.raw("null")
		return
	}
	w.byte('[')
	for i, s := range ss {
		if i > 0 {
			w.byte(',')
		}
		w.str(string(s))
	}
	w.byte(']')
}

func (w *jw) strs(ss []string)                  { strList(w, ss) }
func (w *jw) threadIDs(ids []infinity.ThreadID) { strList(w, ids) }
func (w *jw) msgIDs(ids []infinity.MessageID)   { strList(w, ids) }

// record writes a journal or snapshot record (see the record type's tags).
func (w *jw) record(r *record) {
	first := true
	w.byte('{')
	w.key(&first, "op")
	w.str(r.Op)
	if r.Info != nil {
		w.key(&first, "info")
		w.value(*r.Info)
	}
	if r.Commit != nil {
		w.key(&first, "commit")
		if w.slow {
			w.value(*r.Commit)
		} else {
			w.commit(r.Commit)
		}
	}
	if r.Thread != "" {
		w.key(&first, "thread")
		w.str(string(r.Thread))
	}
	if len(r.IDs) > 0 {
		w.key(&first, "ids")
		w.strs(r.IDs)
	}
	if len(r.Msgs) > 0 {
		w.key(&first, "msgs")
		w.msgIDs(r.Msgs)
	}
	if r.Now != 0 {
		w.key(&first, "now")
		w.int(r.Now)
	}
	if r.Exp != 0 {
		w.key(&first, "exp")
		w.int(r.Exp)
	}
	if r.State != nil {
		w.key(&first, "state")
		w.value(*r.State)
	}
	if r.Version != 0 {
		w.key(&first, "version")
		w.uint(uint64(r.Version))
	}
	if r.Queued != nil {
		w.key(&first, "queued")
		if w.slow {
			w.value(*r.Queued)
		} else {
			w.queued(r.Queued)
		}
	}
	if r.Base != 0 {
		w.key(&first, "base")
		w.uint(r.Base)
	}
	if r.Count != 0 {
		w.key(&first, "count")
		w.int(int64(r.Count))
	}
	if r.Snap != nil {
		w.key(&first, "snap")
		if w.slow {
			w.value(*r.Snap)
		} else {
			w.snapThread(r.Snap)
		}
	}
	if len(r.Marks) > 0 {
		w.key(&first, "marks")
		w.byte('[')
		for i, m := range r.Marks {
			if i > 0 {
				w.byte(',')
			}
			if w.slow {
				w.value(m)
				continue
			}
			w.raw(`{"t":`)
			w.str(string(m.Thread))
			w.raw(`,"m":`)
			w.str(string(m.Msg))
			w.raw(`,"e":`)
			w.int(m.Exp)
			w.byte('}')
		}
		w.byte(']')
	}
	if len(r.Inbox) > 0 {
		w.key(&first, "inbox")
		w.byte('[')
		for i := range r.Inbox {
			if i > 0 {
				w.byte(',')
			}
			if w.slow {
				w.value(r.Inbox[i])
			} else {
				w.queued(&r.Inbox[i])
			}
		}
		w.byte(']')
	}
	w.byte('}')
}

// commit writes an infinity.Commit (no JSON tags: Go field names, no
// omitempty).
func (w *jw) commit(c *infinity.Commit) {
	w.raw(`{"Thread":`)
	w.str(string(c.Thread))
	w.raw(`,"Expected":`)
	w.int(int64(c.Expected))
	w.raw(`,"Items":`)
	w.items(c.Items)
	w.raw(`,"Applied":`)
	w.msgIDs(c.Applied)
	w.raw(`,"Outbox":`)
	w.outbox(c.Outbox)
	w.raw(`,"Create":`)
	if c.Create == nil {
		w.raw("null")
	} else {
		w.value(c.Create)
	}
	w.raw(`,"Close":`)
	w.threadIDs(c.Close)
	w.raw(`,"Summary":`)
	if c.Summary == nil {
		w.raw("null")
	} else {
		w.value(*c.Summary)
	}
	w.byte('}')
}

func (w *jw) items(items []infinity.Item) {
	if items == nil {
		w.raw("null")
		return
	}
	w.byte('[')
	for i := range items {
		if i > 0 {
			w.byte(',')
		}
		w.item(&items[i])
	}
	w.byte(']')
}

func (w *jw) item(it *infinity.Item) {
	w.raw(`{"id":`)
	w.str(it.ID)
	w.raw(`,"kind":`)
	w.str(it.Kind.String()) // ItemKind.MarshalText
	if it.Text != "" {
		w.raw(`,"text":`)
		w.str(it.Text)
	}
	if c := it.Call; c != nil {
		w.raw(`,"call":`)
		w.call(c)
	}
	if r := it.Result; r != nil {
		w.raw(`,"result":{"call_id":`)
		w.str(r.CallID)
		if len(r.Parts) > 0 {
			w.raw(`,"parts":`)
			w.parts(r.Parts)
		}
		if r.IsError {
			w.raw(`,"is_error":true`)
		}
		if r.State != 0 {
			w.raw(`,"state":`)
			w.uint(uint64(r.State))
		}
		if len(r.Display) > 0 {
			w.raw(`,"display":`)
			w.value(r.Display)
		}
		if r.Subscription {
			w.raw(`,"subscription":true`)
		}
		w.byte('}')
	}
	if u := it.Usage; u != nil {
		w.raw(`,"usage":{"input":`)
		w.int(int64(u.Input))
		w.raw(`,"output":`)
		w.int(int64(u.Output))
		w.byte('}')
	}
	if it.Model != "" {
		w.raw(`,"model":`)
		w.str(it.Model)
	}
	w.raw(`,"at":`)
	w.time(it.At)
	w.byte('}')
}

func (w *jw) call(c *infinity.ToolCall) {
	w.raw(`{"id":`)
	w.str(c.ID)
	w.raw(`,"name":`)
	w.str(c.Name)
	w.raw(`,"args":`)
	w.rawJSON(c.Args)
	w.byte('}')
}

func (w *jw) parts(ps []infinity.Part) {
	w.byte('[')
	for i := range ps {
		p := &ps[i]
		if i > 0 {
			w.byte(',')
		}
		w.raw(`{"type":`)
		w.str(p.Type)
		if p.Text != "" {
			w.raw(`,"text":`)
			w.str(p.Text)
		}
		if p.Data != "" {
			w.raw(`,"data":`)
			w.str(p.Data)
		}
		if p.MediaType != "" {
			w.raw(`,"media_type":`)
			w.str(p.MediaType)
		}
		w.byte('}')
	}
	w.byte(']')
}

func (w *jw) outbox(out []infinity.Outgoing) {
	if out == nil {
		w.raw("null")
		return
	}
	w.byte('[')
	for i := range out {
		o := &out[i]
		if i > 0 {
			w.byte(',')
		}
		w.raw(`{"id":`)
		w.str(o.ID)
		if o.Message != nil {
			w.raw(`,"message":`)
			w.message(o.Message)
		}
		if !o.At.IsZero() {
			w.raw(`,"at":`)
			w.time(o.At)
		}
		if o.Invoke != nil {
			w.raw(`,"invoke":`)
			w.value(*o.Invoke)
		}
		w.byte('}')
	}
	w.byte(']')
}

func (w *jw) queued(q *infinity.Queued) {
	w.raw(`{"message":`)
	w.message(&q.Message)
	if !q.At.IsZero() {
		w.raw(`,"at":`)
		w.time(q.At)
	}
	w.byte('}')
}

func (w *jw) message(m *infinity.InputMessage) {
	first := true
	w.byte('{')
	if m.ID != "" {
		w.key(&first, "id")
		w.str(string(m.ID))
	}
	w.key(&first, "group_id")
	w.str(string(m.GroupID))
	w.key(&first, "content")
	w.content(&m.Content)
	if len(m.Metadata) > 0 {
		w.key(&first, "metadata")
		w.rawJSON(m.Metadata)
	}
	if m.Synthetic != nil {
		w.key(&first, "synthetic")
		w.value(*m.Synthetic)
	}
	if len(m.DisplayAs) > 0 {
		w.key(&first, "display_as")
		w.value(m.DisplayAs)
	}
	if m.Subscription {
		w.key(&first, "subscription")
		w.bool(true)
	}
	w.byte('}')
}

func (w *jw) content(c *infinity.Content) {
	w.raw(`{"type":`)
	w.str(string(c.Type))
	if c.Text != "" {
		w.raw(`,"text":`)
		w.str(c.Text)
	}
	if c.ID != "" {
		w.raw(`,"id":`)
		w.str(c.ID)
	}
	if c.CallID != "" {
		w.raw(`,"call_id":`)
		w.str(c.CallID)
	}
	if len(c.Parts) > 0 {
		w.raw(`,"content":`)
		w.parts(c.Parts)
	}
	if c.AuthURL != "" {
		w.raw(`,"auth_url":`)
		w.str(c.AuthURL)
	}
	if c.Prompt != "" {
		w.raw(`,"prompt":`)
		w.str(c.Prompt)
	}
	if len(c.Choices) > 0 {
		w.raw(`,"choices":`)
		w.strs(c.Choices)
	}
	if c.Default != 0 {
		w.raw(`,"default":`)
		w.int(int64(c.Default))
	}
	if c.ResponseURL != "" {
		w.raw(`,"response_url":`)
		w.str(c.ResponseURL)
	}
	w.byte('}')
}

func (w *jw) snapThread(t *snapThread) {
	w.raw(`{"info":`)
	w.value(t.Info)
	if len(t.Items) > 0 {
		w.raw(`,"items":`)
		w.items(t.Items)
	}
	if len(t.Outbox) > 0 {
		w.raw(`,"outbox":`)
		w.outbox(t.Outbox)
	}
	if len(t.Children) > 0 {
		w.raw(`,"children":`)
		w.threadIDs(t.Children)
	}
	if len(t.Applied) > 0 {
		w.raw(`,"applied":`)
		w.msgIDs(t.Applied)
	}
	if len(t.Summaries) > 0 {
		w.raw(`,"summaries":`)
		w.value(t.Summaries)
	}
	w.byte('}')
}

// appendRecord appends r's JSON payload to buf: with the hand-written
// encoder when the types are the ones it was written for, else with
// json.Marshal for everything below the record's own fields.
func appendRecord(buf []byte, r *record) ([]byte, error) {
	w := jw{buf: buf, slow: !fastTypesOK}
	w.record(r)
	if w.err != nil {
		return buf, w.err
	}
	return w.buf, nil
}

// fastFields lists, per type the encoder spells out, every field as
// "Name type tag", in order. fastTypesOK is false when a type differs.
var fastFields = map[reflect.Type][]string{
	reflect.TypeFor[record]():                {"Op string op", "Info *infinity.ThreadInfo info,omitempty", "Commit *infinity.Commit commit,omitempty", "Thread infinity.ThreadID thread,omitempty", "IDs []string ids,omitempty", "Msgs []infinity.MessageID msgs,omitempty", "Now int64 now,omitempty", "Exp int64 exp,omitempty", "State *infinity.State state,omitempty", "Version infinity.Version version,omitempty", "Queued *infinity.Queued queued,omitempty", "Base uint64 base,omitempty", "Count int count,omitempty", "Snap *file.snapThread snap,omitempty", "Marks []file.markEntry marks,omitempty", "Inbox []infinity.Queued inbox,omitempty"},
	reflect.TypeFor[markEntry]():             {"Thread infinity.ThreadID t", "Msg infinity.MessageID m", "Exp int64 e"},
	reflect.TypeFor[snapThread]():            {"Info infinity.ThreadInfo info", "Items []infinity.Item items,omitempty", "Outbox []infinity.Outgoing outbox,omitempty", "Children []infinity.ThreadID children,omitempty", "Applied []infinity.MessageID applied,omitempty", "Summaries []infinity.Summary summaries,omitempty"},
	reflect.TypeFor[infinity.Commit]():       {"Thread infinity.ThreadID ", "Expected int ", "Items []infinity.Item ", "Applied []infinity.MessageID ", "Outbox []infinity.Outgoing ", "Create []infinity.ThreadInfo ", "Close []infinity.ThreadID ", "Summary *infinity.Summary "},
	reflect.TypeFor[infinity.Item]():         {"ID string id", "Kind infinity.ItemKind kind", "Text string text,omitempty", "Call *infinity.ToolCall call,omitempty", "Result *infinity.ToolResult result,omitempty", "Usage *infinity.Usage usage,omitempty", "Model string model,omitempty", "At time.Time at"},
	reflect.TypeFor[infinity.ToolCall]():     {"ID string id", "Name string name", "Args json.RawMessage args"},
	reflect.TypeFor[infinity.ToolResult]():   {"CallID string call_id", "Parts []infinity.Part parts,omitempty", "IsError bool is_error,omitempty", "State infinity.ResultState state,omitempty", "Display []infinity.DisplaySegment display,omitempty", "Subscription bool subscription,omitempty"},
	reflect.TypeFor[infinity.Usage]():        {"Input int input", "Output int output"},
	reflect.TypeFor[infinity.Part]():         {"Type string type", "Text string text,omitempty", "Data string data,omitempty", "MediaType string media_type,omitempty"},
	reflect.TypeFor[infinity.Outgoing]():     {"ID string id", "Message *infinity.InputMessage message,omitempty", "At time.Time at,omitzero", "Invoke *infinity.Invocation invoke,omitempty"},
	reflect.TypeFor[infinity.Queued]():       {"Message infinity.InputMessage message", "At time.Time at,omitzero"},
	reflect.TypeFor[infinity.InputMessage](): {"ID infinity.MessageID id,omitempty", "GroupID infinity.ThreadID group_id", "Content infinity.Content content", "Metadata json.RawMessage metadata,omitempty", "Synthetic *infinity.Synthetic synthetic,omitempty", "DisplayAs []infinity.DisplaySegment display_as,omitempty", "Subscription bool subscription,omitempty"},
	reflect.TypeFor[infinity.Content]():      {"Type infinity.ContentType type", "Text string text,omitempty", "ID string id,omitempty", "CallID string call_id,omitempty", "Parts []infinity.Part content,omitempty", "AuthURL string auth_url,omitempty", "Prompt string prompt,omitempty", "Choices []string choices,omitempty", "Default int default,omitempty", "ResponseURL string response_url,omitempty"},
}

// fastTypesOK reports whether every type the encoder spells out still has
// the fields it was written for, and none marshals itself.
var fastTypesOK = fastTypesMismatch() == ""

// fastTypesMismatch describes the first difference between the types and
// fastFields ("" when there is none).
func fastTypesMismatch() string {
	marshaler := reflect.TypeFor[json.Marshaler]()
	textMarshaler := reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()
	for t, want := range fastFields {
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
