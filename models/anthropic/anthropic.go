package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
)

// DefaultMaxRetries is the retry budget (attempts after the first,
// before the first byte of a response) when Config.MaxRetries is 0.
const DefaultMaxRetries = 3

// DefaultBaseURL is the API's base URL when Config.BaseURL is empty.
const DefaultBaseURL = "https://api.anthropic.com/"

// DefaultMaxIdleConns is how many idle connections to the API the
// provider's own HTTP client keeps (Config.HTTPClient nil): thousands of
// agents calling at once reuse them instead of opening new ones.
const DefaultMaxIdleConns = 1024

// apiVersion is the Messages API version the provider speaks.
const apiVersion = "2023-06-01"

// userAgent names the client to the server.
const userAgent = "infinity-runtime (models/anthropic)"

// maxEventLine bounds one line, and one event's data, of the event stream.
const maxEventLine = 16 << 20

// DefaultMaxTokens is the output budget of a request whose MaxTokens is 0.
const DefaultMaxTokens = 4096

// Config configures a Provider.
type Config struct {
	// BaseURL is the API's base URL (DefaultBaseURL when empty). The
	// provider posts to BaseURL + "v1/messages".
	BaseURL string
	// APIKey authenticates the requests. It is required; the provider never
	// logs it. FromEnv reads it from ANTHROPIC_API_KEY.
	APIKey string
	// Models lists the models served, the first being the default of a
	// request with no Model. At least one is required, each with an ID, a
	// context window and an output limit.
	Models []infinity.ModelInfo
	// HTTPClient sends the requests (when nil, a client that keeps
	// DefaultMaxIdleConns idle connections, without an overall timeout:
	// streams are long, and the request context bounds them).
	HTTPClient *http.Client
	// MaxRetries is how often the provider retries a request that failed before
	// the first byte of the response (429, 529, 408, 409, 5xx, connection
	// errors): 0 means DefaultMaxRetries, a negative value means never.
	// Failures after that are reported as wrapping infinity.ErrRetryable,
	// and the engine retries with its own backoff.
	MaxRetries int
}

// Provider is an infinity.ModelProvider for the Anthropic Messages API. It
// is safe for concurrent use.
type Provider struct {
	api     *httpapi.Client
	baseURL string // for messages, without a password
	models  infinity.Catalog
}

var _ infinity.ModelProvider = (*Provider)(nil)

// New validates cfg and returns a provider. Invalid configuration yields an
// error wrapping infinity.ErrInvalid.
func New(cfg Config) (*Provider, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, invalidf("an API key is required (set Config.APIKey, or ANTHROPIC_API_KEY with FromEnv)")
	}
	if err := infinity.ValidateModels(cfg.Models); err != nil {
		return nil, fmt.Errorf("anthropic: %w", err)
	}
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := httpapi.ParseBaseURL(base)
	if err != nil {
		return nil, invalidf("Config.BaseURL: %v", err)
	}
	header := http.Header{
		"X-Api-Key": {cfg.APIKey},
		// As the SDK did: gateways in front of the API that read the
		// bearer token get it too.
		"Authorization":     {"Bearer " + cfg.APIKey},
		"Anthropic-Version": {apiVersion},
		"Content-Type":      {"application/json"},
		"Accept":            {"application/json"},
		"User-Agent":        {userAgent},
	}
	return &Provider{
		api:     httpapi.New(cfg.HTTPClient, DefaultMaxIdleConns, u, httpapi.Endpoint(u, "v1/messages"), header, retries),
		baseURL: u.Redacted(),
		models:  slices.Clone(infinity.Catalog(cfg.Models)),
	}, nil
}

// FromEnv returns a provider serving models with the API key of
// ANTHROPIC_API_KEY and, when set, the base URL of ANTHROPIC_BASE_URL.
func FromEnv(models []infinity.ModelInfo) (*Provider, error) {
	key := os.Getenv("ANTHROPIC_API_KEY")
	if strings.TrimSpace(key) == "" {
		return nil, invalidf("ANTHROPIC_API_KEY is not set")
	}
	return New(Config{APIKey: key, BaseURL: os.Getenv("ANTHROPIC_BASE_URL"), Models: models})
}

// Models returns the configured models.
func (p *Provider) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	return p.models.Models(ctx)
}

// Stream runs one streaming Messages request. See the package
// documentation for the events and errors.
func (p *Provider) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		body, err := p.body(&req)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		resp, retries, err := p.api.Post(ctx, body)
		if err != nil {
			yield(infinity.StreamEvent{}, p.requestError(ctx, retries, err))
			return
		}
		events := newEvents(resp.Body)
		finished := false
		defer func() { events.close(resp.Body, finished) }()
		st := state{requestID: resp.Header.Get("Request-Id")}
		for {
			ev, err := events.next()
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					err = cerr
				} else if errors.Is(err, io.EOF) {
					err = fmt.Errorf("anthropic: the stream ended before message_stop: %w", infinity.ErrRetryable)
				} else {
					err = fmt.Errorf("anthropic: the stream broke: %w: %w", err, infinity.ErrRetryable)
				}
				yield(infinity.StreamEvent{}, err)
				return
			}
			if err := ctx.Err(); err != nil {
				yield(infinity.StreamEvent{}, err)
				return
			}
			out, err, done := st.handle(ev)
			if err != nil {
				yield(infinity.StreamEvent{}, err)
				return
			}
			if out.Kind != 0 && !yield(out, nil) {
				return
			}
			if done {
				finished = true
				return
			}
		}
	}
}

// events reads a response's server-sent events, each decoded as an event
// (the event: line repeats the data's type and is not needed).
type events struct {
	sse *httpapi.SSE
	ev  event
}

func newEvents(r io.Reader) *events { return &events{sse: httpapi.NewSSE(r, maxEventLine)} }

// next returns the next event (reused: valid until the next call), or
// io.EOF when the stream ends between events.
func (e *events) next() (*event, error) {
	data, err := e.sse.Next()
	if err != nil {
		return nil, err
	}
	e.ev = event{}
	if err := json.Unmarshal(data, &e.ev); err != nil {
		return nil, fmt.Errorf("an event does not decode: %w", err)
	}
	return &e.ev, nil
}

// close closes body, draining it first when the stream finished
// (message_stop arrived) so that its connection can be reused.
func (e *events) close(body io.Closer, finished bool) { e.sse.Close(body, finished) }

// event is what handle reads of a streamed Messages event.
type event struct {
	Type    string `json:"type"`
	Index   int64  `json:"index"`
	Message struct {
		Usage usage `json:"usage"`
	} `json:"message"`
	ContentBlock struct {
		Type  string          `json:"type"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Text  string          `json:"text"`
		Input json.RawMessage `json:"input"`
	} `json:"content_block"`
	Delta struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage usage     `json:"usage"`
	Error errorBody `json:"error"`
}

// errorBody is the error object of an error event or answer.
type errorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// streamBlock is a content block of the response being streamed.
type streamBlock struct {
	tool  bool
	id    string
	name  string
	args  []byte // input_json_delta fragments, concatenated
	start []byte // the input of content_block_start, if not empty
}

// state follows one response's SSE events.
type state struct {
	blocks    map[int64]*streamBlock
	usage     infinity.Usage
	stop      string
	truncated string // a tool call whose input JSON was cut short
	requestID string // the response's request-id, for error messages
}

// handle turns one SSE event into at most one stream event; done reports
// message_stop.
func (st *state) handle(ev *event) (out infinity.StreamEvent, err error, done bool) {
	switch ev.Type {
	case "message_start":
		u := ev.Message.Usage
		st.usage.Input = int(u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens)
		st.usage.Output = int(u.OutputTokens)
	case "content_block_start":
		cb := &ev.ContentBlock
		switch cb.Type {
		case "tool_use":
			b := &streamBlock{tool: true, id: cb.ID, name: cb.Name}
			if raw := string(bytes.TrimSpace(cb.Input)); raw != "" && raw != "{}" && raw != "null" {
				b.start = []byte(raw)
			}
			st.block(ev.Index, b)
		case "text":
			if cb.Text != "" {
				return infinity.StreamEvent{Kind: infinity.StreamText, Text: cb.Text}, nil, false
			}
		}
	case "content_block_delta":
		switch ev.Delta.Type {
		case "text_delta":
			if ev.Delta.Text != "" {
				return infinity.StreamEvent{Kind: infinity.StreamText, Text: ev.Delta.Text}, nil, false
			}
		case "input_json_delta":
			b := st.blocks[ev.Index]
			if b == nil || !b.tool {
				return out, fmt.Errorf("anthropic: input_json_delta for content block %d, which is not a tool_use block: %w", ev.Index, infinity.ErrRetryable), false
			}
			b.args = append(b.args, ev.Delta.PartialJSON...)
		}
	case "content_block_stop":
		b := st.blocks[ev.Index]
		if b == nil || !b.tool {
			return out, nil, false
		}
		delete(st.blocks, ev.Index)
		args := b.args
		if len(strings.TrimSpace(string(args))) == 0 {
			args = b.start
		}
		if len(args) == 0 {
			args = []byte("{}")
		}
		if !jsonObject(args) {
			// Held back: at max_tokens the input of the last call is cut
			// short, and the call is dropped; otherwise the stream is broken.
			st.truncated = b.name
			return out, nil, false
		}
		return infinity.StreamEvent{Kind: infinity.StreamToolCall, Call: &infinity.ToolCall{ID: b.id, Name: b.name, Args: args}}, nil, false
	case "message_delta":
		if ev.Delta.StopReason != "" {
			st.stop = ev.Delta.StopReason
		}
		u := ev.Usage
		if u.InputTokens > 0 { // cumulative, when the API reports it here
			st.usage.Input = int(u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens)
		}
		st.usage.Output = int(u.OutputTokens)
	case "message_stop":
		stop := infinity.StopEnd
		switch st.stop {
		case "tool_use":
			stop = infinity.StopToolUse
		case "max_tokens":
			stop = infinity.StopMaxTokens
		}
		if st.truncated != "" && stop != infinity.StopMaxTokens {
			return out, fmt.Errorf("anthropic: the input of a %q tool call is not a JSON object: %w", st.truncated, infinity.ErrRetryable), false
		}
		return infinity.StreamEvent{Kind: infinity.StreamDone, Usage: st.usage, Stop: stop}, nil, true
	case "error": // an error event in a 200 stream
		return out, eventError(&ev.Error, st.requestID), false
	}
	return out, nil, false
}

func (st *state) block(i int64, b *streamBlock) {
	if st.blocks == nil {
		st.blocks = make(map[int64]*streamBlock, 2)
	}
	st.blocks[i] = b
}

// jsonObject reports whether b is one JSON object.
func jsonObject(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// requestError classifies an error of the request, after retries
// retries: API errors by status, connection errors as retryable.
func (p *Provider) requestError(ctx context.Context, retries int, err error) error {
	ans, err := httpapi.Failure(ctx, "anthropic", p.baseURL, err)
	if ans == nil {
		return err
	}
	return statusError(ans, retries)
}

// eventError classifies an error event in a stream that had started:
// errors about the request are final, the rest (overloaded_error,
// api_error…) worth retrying.
func eventError(e *errorBody, requestID string) error {
	switch e.Type {
	case "invalid_request_error", "authentication_error", "permission_error", "not_found_error", "request_too_large", "billing_error":
		return fmt.Errorf("anthropic: error event %q in the stream%s: %s", e.Type, requestIDNote(requestID), httpapi.Clip(e.Message, 300))
	}
	return fmt.Errorf("anthropic: error event %q in the stream%s: %s: %w", e.Type, requestIDNote(requestID), httpapi.Clip(e.Message, 300), infinity.ErrRetryable)
}

// requestIDNote names the request-id the API gave a request (what its
// support asks for), as the SDK's errors did.
func requestIDNote(id string) string {
	if id = strings.TrimSpace(id); id == "" {
		return ""
	}
	return fmt.Sprintf(" (request ID %q)", httpapi.Clip(id, 100))
}

// statusError classifies an HTTP error answer by its status; its body's
// error type names it, and its message is quoted only where it is about
// the request (not the credentials).
func statusError(ans *httpapi.Answer, retries int) error {
	var body struct {
		Error errorBody `json:"error"`
	}
	_ = json.Unmarshal(ans.Body, &body) // what does not decode stays empty
	e := &body.Error
	typ := e.Type
	if typ == "" {
		typ = "no error type"
	}
	rid := requestIDNote(ans.Header.Get("Request-Id"))
	code := ans.StatusCode
	switch {
	case code == http.StatusTooManyRequests:
		return &infinity.RateLimitedError{RetryAfter: infinity.RetryAfter(ans.Header, time.Now()),
			Err: fmt.Errorf("anthropic: %w (%s)%s after %d retries", ans, typ, rid, retries)}
	case httpapi.RetryableStatus(code):
		return fmt.Errorf("anthropic: %w (%s)%s after %d retries: %w", ans, typ, rid, retries, infinity.ErrRetryable)
	case code == http.StatusUnauthorized:
		return fmt.Errorf("anthropic: %w%s: the API key was rejected; check Config.APIKey (ANTHROPIC_API_KEY)", ans, rid)
	case code == http.StatusForbidden:
		return fmt.Errorf("anthropic: %w%s: the API key may not use this model or resource; check the key's workspace and permissions", ans, rid)
	case code == http.StatusNotFound:
		return fmt.Errorf("anthropic: %w%s: check the model name and Config.BaseURL (%s)", ans, rid, httpapi.Clip(e.Message, 300))
	case code == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("anthropic: %w%s: the request is too large; shorten the history: %w", ans, rid, infinity.ErrInvalid)
	case code == http.StatusBadRequest:
		return fmt.Errorf("anthropic: %w%s: the API rejected the request; check the model, max_tokens, tool schemas and history (%s): %w", ans, rid, httpapi.Clip(e.Message, 300), infinity.ErrInvalid)
	}
	return fmt.Errorf("anthropic: %w (%s)%s: %s", ans, typ, rid, httpapi.Clip(e.Message, 300))
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("anthropic: "+format+": %w", append(args, infinity.ErrInvalid)...)
}
