package replay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/infinity-runtime/infinity"
)

// Request is a model request as a recording keeps it: what the provider
// receives and sends on to the model. The engine's own fields (item ids
// and times, usage, display segments, result states, the Async and
// Passive flags of tools) are left out: no model sees them. Image bytes
// are kept as their SHA-256 only.
type Request struct {
	// Model is CompletionRequest.Model ("" lets the provider pick).
	Model string `json:"model,omitempty"`
	// MaxTokens is CompletionRequest.MaxTokens.
	MaxTokens int `json:"max_tokens,omitempty"`
	// System is the system prompt.
	System string `json:"system,omitempty"`
	// Tools are the tools offered, in order.
	Tools []Tool `json:"tools,omitempty"`
	// Items are the history the model sees, oldest first.
	Items []Item `json:"items"`
}

// Tool is a tool offered to the model.
type Tool struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Schema is the tool's JSON Schema when it is valid JSON;
	// SchemaText holds anything else, verbatim.
	Schema     json.RawMessage `json:"schema,omitempty"`
	SchemaText string          `json:"schema_text,omitempty"`
}

// Item is one history item of a request.
type Item struct {
	Kind   infinity.ItemKind `json:"kind"`
	Text   string            `json:"text,omitempty"`
	Call   *ToolCall         `json:"call,omitempty"`
	Result *Result           `json:"result,omitempty"`
}

// ToolCall is a tool call, in a request's history or a response.
type ToolCall struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Args are the arguments when they are valid JSON; ArgsText holds
	// anything else a model wrote, verbatim.
	Args     json.RawMessage `json:"args,omitempty"`
	ArgsText string          `json:"args_text,omitempty"`
}

// Result is a tool result in a request's history.
type Result struct {
	CallID  string `json:"call_id"`
	Parts   []Part `json:"parts,omitempty"`
	IsError bool   `json:"is_error,omitempty"`
}

// Part is one part of a tool result: text, or an image by its digest.
type Part struct {
	Type      string `json:"type"`
	Text      string `json:"text,omitempty"`
	MediaType string `json:"media_type,omitempty"`
	// SHA256 is the hex SHA-256 of an image's base64 data (the bytes are
	// not kept); Size is that data's length.
	SHA256 string `json:"sha256,omitempty"`
	Size   int    `json:"size,omitempty"`
}

// newCall keeps a tool call, its arguments as JSON when they are JSON.
func newCall(c infinity.ToolCall) *ToolCall {
	out := &ToolCall{ID: c.ID, Name: c.Name}
	switch {
	case len(c.Args) == 0:
	case json.Valid(c.Args):
		out.Args = compact(c.Args)
	default:
		out.ArgsText = string(c.Args)
	}
	return out
}

// toolCall turns a recorded call back into the engine's form.
func (c *ToolCall) toolCall() *infinity.ToolCall {
	args := c.Args
	if len(args) == 0 && c.ArgsText != "" {
		args = json.RawMessage(c.ArgsText)
	}
	return &infinity.ToolCall{ID: c.ID, Name: c.Name, Args: append(json.RawMessage(nil), args...)}
}

func (c *ToolCall) args() string {
	if len(c.Args) > 0 {
		return canonicalJSON(c.Args)
	}
	return c.ArgsText
}

// compact returns valid JSON without insignificant space.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return b.Bytes()
}

// NewRequest keeps what a provider sends of req (see Request).
func NewRequest(req infinity.CompletionRequest) Request {
	r := Request{Model: req.Model, MaxTokens: req.MaxTokens, System: req.System, Items: make([]Item, 0, len(req.Items))}
	for _, t := range req.Tools {
		tool := Tool{Name: t.Name, Description: t.Description}
		switch {
		case len(t.Schema) == 0:
		case json.Valid(t.Schema):
			tool.Schema = compact(t.Schema)
		default:
			tool.SchemaText = string(t.Schema)
		}
		r.Tools = append(r.Tools, tool)
	}
	for _, it := range req.Items {
		item := Item{Kind: it.Kind, Text: it.Text}
		if it.Call != nil {
			item.Call = newCall(*it.Call)
		}
		if it.Result != nil {
			res := &Result{CallID: it.Result.CallID, IsError: it.Result.IsError}
			for _, p := range it.Result.Parts {
				part := Part{Type: p.Type, Text: p.Text, MediaType: p.MediaType}
				if part.Type == "" {
					part.Type = "text"
				}
				if p.Data != "" {
					sum := sha256.Sum256([]byte(p.Data))
					part.SHA256, part.Size = hex.EncodeToString(sum[:]), len(p.Data)
				}
				res.Parts = append(res.Parts, part)
			}
			item.Result = res
		}
		r.Items = append(r.Items, item)
	}
	return r
}

// The placeholders of the matching form. They use characters no
// generated id or timestamp has, so they never match again.
const (
	timeMark   = "⟪time⟫"
	stackMark  = "⟪stack:"
	threadMark = "⟪thread:"
	callMark   = "⟪call:"
	markEnd    = "⟫"
)

// timeRE matches a date and time of day: RFC 3339, and Go's
// time.Time.String ("2006-01-02 15:04:05.999 +0000 UTC").
var timeRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}(?: [A-Z][A-Za-z]{1,4})?| [+-]\d{4}(?: [A-Z][A-Za-z]{1,4})?)?`)

// minCallIDInText is the shortest call id replaced inside text (a short
// one such as "1" would replace ordinary words and numbers); call id
// fields are replaced whatever their length.
const minCallIDInText = 8

// idChar reports whether c may belong to a generated id's token.
func idChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// generatedID reports whether s has the form of an id the runtime makes
// for a thread: 't', 'e' or 'k' then 20 characters of [a-z2-7]
// (infinity.NewThreadID, and infinity.DeriveID for children, event and
// compaction threads).
func generatedID(s string) bool {
	if len(s) != 21 || s[0] != 't' && s[0] != 'e' && s[0] != 'k' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// symbols maps the run-specific names of one request (generated thread
// ids and call ids) to placeholders numbered by where they first appear,
// so that the same request of another run, where those names differ,
// reads the same.
type symbols struct {
	toMark map[string]string // name → placeholder
	toName map[string]string // placeholder → name
	calls  int
	others int
}

func newSymbols() *symbols {
	return &symbols{toMark: map[string]string{}, toName: map[string]string{}}
}

func (s *symbols) add(name, mark string) string {
	if m, ok := s.toMark[name]; ok {
		return m
	}
	s.toMark[name], s.toName[mark] = mark, name
	return mark
}

// call names a call id.
func (s *symbols) call(id string) string {
	if m, ok := s.toMark[id]; ok {
		return m
	}
	s.calls++
	return s.add(id, callMark+strconv.Itoa(s.calls)+markEnd)
}

// text returns s with its dates and times masked and its known names
// (and generated thread ids, which it learns) replaced.
func (s *symbols) text(t string) string {
	t = timeRE.ReplaceAllLiteralString(t, timeMark)
	return s.replace(t, true)
}

// replace rewrites the tokens of t (runs of letters, digits, '_' and '-')
// that are known names, or (learn) generated thread ids, with their
// placeholders.
func (s *symbols) replace(t string, learn bool) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(t); {
		if !idChar(t[i]) {
			i++
			continue
		}
		j := i
		for j < len(t) && idChar(t[j]) {
			j++
		}
		tok := t[i:j]
		mark, ok := s.toMark[tok]
		if ok && !generatedID(tok) && strings.HasPrefix(mark, callMark) && len(tok) < minCallIDInText {
			ok = false
		}
		if !ok && learn && generatedID(tok) {
			s.others++
			mark, ok = s.add(tok, threadMark+strconv.Itoa(s.others)+markEnd), true
		}
		if ok {
			b.WriteString(t[last:i])
			b.WriteString(mark)
			last = j
		}
		i = j
	}
	if last == 0 {
		return t
	}
	b.WriteString(t[last:])
	return b.String()
}

// form is a request in its matching form: the lines that are compared
// (and shown in a diff), their key, and the placeholders used.
type form struct {
	lines []string
	key   string
	sym   *symbols
}

// matchForm renders a request of provider, made by the thread whose
// lineage is stack, in its matching form: generated thread ids become
// ⟪stack:i⟫ (the caller's lineage, root first) or ⟪thread:n⟫ (others, in
// order of appearance), call ids ⟪call:n⟫, dates with times ⟪time⟫; one
// line per line of every text.
func matchForm(provider string, stack []infinity.ThreadID, r *Request) form {
	sym := newSymbols()
	var lines []string
	put := func(label, text string) {
		for line := range strings.SplitSeq(text, "\n") {
			lines = append(lines, label+" | "+line)
		}
	}
	lines = append(lines, "provider: "+provider, "model: "+r.Model, "max_tokens: "+strconv.Itoa(r.MaxTokens))
	names := make([]string, len(stack))
	for i, id := range stack {
		names[i] = string(id)
		if generatedID(string(id)) {
			names[i] = sym.add(string(id), stackMark+strconv.Itoa(i)+markEnd)
		}
	}
	lines = append(lines, "stack: "+strings.Join(names, " "))
	put("system", sym.text(r.System))
	for _, t := range r.Tools {
		put("tool "+t.Name, sym.text(t.Description))
		schema := t.SchemaText
		if len(t.Schema) > 0 {
			schema = canonicalJSON(t.Schema)
		}
		put("tool "+t.Name+" schema", sym.text(schema))
	}
	for i, it := range r.Items {
		label := "item " + strconv.Itoa(i) + " " + it.Kind.String()
		switch {
		case it.Call != nil:
			put(label+" "+sym.call(it.Call.ID)+" "+it.Call.Name, sym.text(it.Call.args()))
		case it.Result != nil:
			label += " " + sym.call(it.Result.CallID)
			if it.Result.IsError {
				label += " error"
			}
			if len(it.Result.Parts) == 0 {
				lines = append(lines, label)
			}
			for _, p := range it.Result.Parts {
				if p.Type == "text" {
					put(label, sym.text(p.Text))
					continue
				}
				lines = append(lines, label+" "+p.Type+" "+p.MediaType+" sha256:"+p.SHA256+" size:"+strconv.Itoa(p.Size))
			}
		default:
			put(label, sym.text(it.Text))
		}
	}
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return form{lines: lines, key: "sha256:" + hex.EncodeToString(h.Sum(nil)), sym: sym}
}

// canonicalJSON writes valid JSON with sorted object keys and no space,
// numbers as written; anything else verbatim.
func canonicalJSON(raw json.RawMessage) string {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return string(raw)
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if e.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// translate rewrites text of the recorded run (whose names rec holds) for
// the asking run (whose names ask holds): a name of the recording that
// stands for the same placeholder as a name of the asking request becomes
// that name.
func translate(t string, rec, ask *symbols) string {
	m := &symbols{toMark: map[string]string{}}
	for name, mark := range rec.toMark {
		if strings.HasPrefix(mark, callMark) && len(name) < minCallIDInText {
			continue // as in text: too short to tell from words
		}
		if now, ok := ask.toName[mark]; ok && now != name {
			m.toMark[name] = now
		}
	}
	if len(m.toMark) == 0 {
		return t
	}
	return m.replace(t, false)
}
