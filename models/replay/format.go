package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/infinity-runtime/infinity"
)

// Format and Version are the first line's "format" and "version".
const (
	Format  = "infinity-replay"
	Version = 1
)

// DefaultName is the name recordings give a provider that has none of its
// own: actors.Config.Model, which serves the agents without a Provider.
const DefaultName = "default"

// ErrFormat is wrapped by the errors of a recording that cannot be read:
// no header, another format, a newer version, a malformed line.
var ErrFormat = errors.New("malformed recording")

// Header is a recording's first line.
type Header struct {
	// Format is always Format; Version is Version.
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Created is when the recording began.
	Created time.Time `json:"created"`
	// Models names the models the recording program ran on, as
	// "provider/model" (RecordOptions.Models); for people, replay does not
	// read it (the "models" lines give each provider's list).
	Models []string `json:"models,omitempty"`
	// Meta is what the recording program adds (RecordOptions.Meta): the
	// agent, the command line. Replay does not read it.
	Meta map[string]string `json:"meta,omitempty"`
}

// Response is a whole model response, its stream folded as the engine
// folds it: the text deltas joined, the calls in order, the usage and stop
// reason of its StreamDone.
type Response struct {
	Text  string              `json:"text,omitempty"`
	Calls []*ToolCall         `json:"calls,omitempty"`
	Usage infinity.Usage      `json:"usage"`
	Stop  infinity.StopReason `json:"stop"`
}

// CallError is a failed model call.
type CallError struct {
	// Message is the error's text.
	Message string `json:"message"`
	// Retryable: it wrapped infinity.ErrRetryable (the engine tried again).
	Retryable bool `json:"retryable,omitempty"`
	// RateLimited: it was an *infinity.RateLimitedError, asking callers to
	// wait RetryAfterMS milliseconds (0: it did not say).
	RateLimited  bool  `json:"rate_limited,omitempty"`
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// err makes the recorded failure an error again, matching
// infinity.ErrRetryable (and infinity.ErrRateLimited) as the original did.
func (e *CallError) err() error {
	err := &RecordedError{Message: e.Message, Retryable: e.Retryable}
	if e.RateLimited {
		return &infinity.RateLimitedError{RetryAfter: time.Duration(e.RetryAfterMS) * time.Millisecond, Err: err}
	}
	return err
}

// RecordedError is a model failure served from a recording.
type RecordedError struct {
	Message   string
	Retryable bool
}

func (e *RecordedError) Error() string { return "recorded model error: " + e.Message }

// Unwrap gives infinity.ErrRetryable for a retryable failure.
func (e *RecordedError) Unwrap() error {
	if e.Retryable {
		return infinity.ErrRetryable
	}
	return nil
}

// Call is one recorded model call: the request, and the response or the
// error it got.
type Call struct {
	// Seq numbers the calls of a recording from 1, in the order they
	// ended.
	Seq int `json:"seq"`
	// Provider is the name the provider was recorded under
	// (Recorder.Wrap).
	Provider string `json:"provider"`
	// Thread and Stack are the calling thread and its lineage, root first,
	// as they were in the recorded run.
	Thread infinity.ThreadID   `json:"thread"`
	Stack  []infinity.ThreadID `json:"stack"`
	// Key is the hash of the request's matching form (see the package
	// documentation). It is for people and tools: a reader computes it
	// again, so a request edited by hand matches as edited.
	Key string `json:"key"`
	// Request is what the provider was asked.
	Request Request `json:"request"`
	// Response is the whole response; Error is set instead when the call
	// failed.
	Response *Response  `json:"response,omitempty"`
	Error    *CallError `json:"error,omitempty"`
}

// Models is a provider's list of served models, as its Models method
// answered during the recording.
type Models struct {
	Provider string               `json:"provider"`
	Models   []infinity.ModelInfo `json:"models"`
}

// callLine and modelsLine are the lines after the header: their "type"
// comes first, then the fields of their kind.
type (
	callLine struct {
		Type string `json:"type"` // "call"
		*Call
	}
	modelsLine struct {
		Type string `json:"type"` // "models"
		*Models
	}
)

// Recording is a decoded recording: its header, the model lists of its
// providers and its calls in recorded order.
type Recording struct {
	Header Header
	// Models are each provider's model list, the last one recorded.
	Models map[string][]infinity.ModelInfo
	Calls  []Call
	// Torn says the file ended in a partial line, which was left out: the
	// recording program stopped while it wrote its last call.
	Torn bool
}

// Root is a root thread's first call in a recording: how the run began.
type Root struct {
	// Thread is the root's id in the recorded run.
	Thread infinity.ThreadID
	// Provider and Model are the call's provider name and model id ("":
	// the provider's default).
	Provider string
	Model    string
	// Input is the root's first user message.
	Input string
}

// Roots lists the root threads whose first call the recording holds (a
// request from a root whose history is one user message), in recorded
// order: what a program that replays a recording starts.
func (r *Recording) Roots() []Root {
	var out []Root
	seen := map[infinity.ThreadID]bool{}
	for _, c := range r.Calls {
		items := c.Request.Items
		if len(c.Stack) != 1 || len(items) != 1 || items[0].Kind != infinity.KindUser || seen[c.Thread] {
			continue
		}
		seen[c.Thread] = true
		out = append(out, Root{Thread: c.Thread, Provider: c.Provider, Model: c.Request.Model, Input: items[0].Text})
	}
	return out
}

// Load reads the recording in the file at path.
func Load(path string) (*Recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	rec, err := decode(f)
	if err != nil {
		return nil, fmt.Errorf("replay: %s: %w", path, err)
	}
	return rec, nil
}

// Decode reads a recording. A last line without its newline that does not
// decode is a write a crash cut short: it is left out and Torn is set.
// Errors wrap ErrFormat (or the reader's error) and name the line.
func Decode(r io.Reader) (*Recording, error) {
	rec, err := decode(r)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	return rec, nil
}

func decode(r io.Reader) (*Recording, error) {
	br := bufio.NewReader(r)
	rec := &Recording{Models: map[string][]infinity.ModelInfo{}}
	for n := 1; ; n++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		last := err != nil
		if len(bytes.TrimSpace(raw)) == 0 {
			if n == 1 {
				return nil, fmt.Errorf("line 1: no header (an empty file or line): %w", ErrFormat)
			}
			if last {
				return rec, nil
			}
			continue
		}
		if n == 1 {
			if err := decodeHeader(raw, &rec.Header); err != nil {
				return nil, fmt.Errorf("line 1: %w", err)
			}
		} else if derr := decodeLine(raw, rec); derr != nil {
			if last && rec.torn(raw) {
				return rec, nil
			}
			return nil, fmt.Errorf("line %d: %w", n, derr)
		}
		if last {
			return rec, nil
		}
	}
}

// torn reports whether raw, the last line and one that does not decode,
// is a line cut short (no newline: every line the recorder writes ends in
// one), and marks the recording so.
func (r *Recording) torn(raw []byte) bool {
	if bytes.HasSuffix(raw, []byte("\n")) {
		return false
	}
	r.Torn = true
	return true
}

func decodeHeader(raw []byte, h *Header) error {
	if err := json.Unmarshal(raw, h); err != nil {
		return fmt.Errorf("header: %v: %w", err, ErrFormat)
	}
	switch {
	case h.Format != Format:
		return fmt.Errorf("header: format %q, want %q: %w", h.Format, Format, ErrFormat)
	case h.Version > Version:
		return fmt.Errorf("header: version %d is newer than this program reads (%d): %w", h.Version, Version, ErrFormat)
	case h.Version < 1:
		return fmt.Errorf("header: version %d: %w", h.Version, ErrFormat)
	}
	return nil
}

func decodeLine(raw []byte, rec *Recording) error {
	var kind struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &kind); err != nil {
		return fmt.Errorf("%v: %w", err, ErrFormat)
	}
	switch kind.Type {
	case "models":
		var m Models
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("models: %v: %w", err, ErrFormat)
		}
		rec.Models[m.Provider] = m.Models
	case "call":
		var c Call
		if err := json.Unmarshal(raw, &c); err != nil {
			if errors.Is(err, infinity.ErrInvalid) { // what ItemKind.UnmarshalText says
				return fmt.Errorf("call: an item kind other than user, assistant, tool_call, tool_result and summary: %w", ErrFormat)
			}
			return fmt.Errorf("call: %v: %w", err, ErrFormat)
		}
		if err := c.check(); err != nil {
			return fmt.Errorf("call %d: %w", c.Seq, err)
		}
		rec.Calls = append(rec.Calls, c)
	default:
		return fmt.Errorf("type %q is neither \"models\" nor \"call\": %w", kind.Type, ErrFormat)
	}
	return nil
}

// check reports what makes a decoded call unusable.
func (c *Call) check() error {
	switch {
	case (c.Response == nil) == (c.Error == nil):
		return fmt.Errorf("want exactly one of response and error: %w", ErrFormat)
	case c.Response != nil && c.Response.Stop == "":
		return fmt.Errorf("response without a stop reason: %w", ErrFormat)
	}
	for i, it := range c.Request.Items {
		var bad string
		switch {
		case it.Kind == 0:
			bad = "an item without its kind"
		case it.Kind == infinity.KindToolCall && it.Call == nil:
			bad = "a tool_call item without its call"
		case it.Kind == infinity.KindToolResult && it.Result == nil:
			bad = "a tool_result item without its result"
		case it.Kind != infinity.KindToolCall && it.Call != nil, it.Kind != infinity.KindToolResult && it.Result != nil:
			bad = "a " + it.Kind.String() + " item with a call or result"
		}
		if bad != "" {
			return fmt.Errorf("request item %d: %s: %w", i, bad, ErrFormat)
		}
	}
	if c.Response != nil {
		for i, call := range c.Response.Calls {
			if call == nil {
				return fmt.Errorf("response call %d is null: %w", i, ErrFormat)
			}
		}
	}
	return nil
}

// Encode writes the recording in the file format: its header, every
// provider's model list, then its calls.
func (r *Recording) Encode(w io.Writer) error {
	if err := writeJSONLine(w, r.Header); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	for _, name := range sortedKeys(r.Models) {
		if err := writeJSONLine(w, modelsLine{"models", &Models{Provider: name, Models: r.Models[name]}}); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	for i := range r.Calls {
		if err := writeJSONLine(w, callLine{"call", &r.Calls[i]}); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	return nil
}

// writeJSONLine writes v as one line, in one Write.
func writeJSONLine(w io.Writer, v any) error {
	var b bytes.Buffer
	e := json.NewEncoder(&b) // Encode ends the line
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
