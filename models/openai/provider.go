package openai

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
	"github.com/infinity-runtime/infinity/models/turns"
)

// DefaultBaseURL is the OpenAI API.
const DefaultBaseURL = "https://api.openai.com/v1"

// DefaultMaxRetries is the number of retries used when Config.MaxRetries
// is zero.
const DefaultMaxRetries = 3

// DefaultMaxIdleConns is how many idle connections the default client
// keeps to the server: as many as actors.Config.MaxModelCalls (by default)
// lets stream at once, so that a burst of calls reuses its connections.
const DefaultMaxIdleConns = 1024

// Names of the request field that carries the output limit.
const (
	ParamMaxTokens           = "max_tokens"
	ParamMaxCompletionTokens = "max_completion_tokens"
)

// Config configures a Provider.
type Config struct {
	// BaseURL is the API root, the part before /chat/completions
	// (default DefaultBaseURL). For Ollama http://localhost:11434/v1, for
	// vLLM http://host:8000/v1, for llama.cpp's llama-server
	// http://host:8080/v1.
	BaseURL string
	// APIKey is sent as a bearer token when not empty. It is required for
	// api.openai.com and optional elsewhere. It is never logged or put in an
	// error message.
	APIKey string
	// Models are the served models; the first is the default. At least one.
	Models []infinity.ModelInfo
	// HTTPClient is the client to use (default: one per provider, on a
	// clone of http.DefaultTransport, so HTTP/2 over TLS when the server
	// offers it, with a 10-minute response-header timeout and
	// MaxIdleConns idle connections). Redirects away from the base URL's
	// origin are refused whichever client is used.
	HTTPClient *http.Client
	// MaxIdleConns is how many idle connections to the server the default
	// client keeps for reuse (default DefaultMaxIdleConns). It is ignored
	// when HTTPClient is set.
	MaxIdleConns int
	// MaxRetries is how often the provider retries a request that failed
	// before the response started (connection errors, 408, 409, 429, 5xx,
	// or what the server's x-should-retry header says), waiting as its
	// retry-after-ms or retry-after header asks (up to two minutes; a
	// longer wait ends the retries) or else backing off from half a second
	// to eight. Zero means DefaultMaxRetries; a negative value disables the
	// retries.
	MaxRetries int
	// MaxTokensParam names the request field carrying the output limit:
	// ParamMaxTokens (understood by Ollama, vLLM and llama.cpp) or
	// ParamMaxCompletionTokens (required by OpenAI's reasoning models). Empty
	// chooses max_completion_tokens for api.openai.com and max_tokens
	// elsewhere.
	MaxTokensParam string
}

// String describes c without its API key.
func (c Config) String() string {
	key := "unset"
	if c.APIKey != "" {
		key = "set"
	}
	ids := make([]string, len(c.Models))
	for i, m := range c.Models {
		ids[i] = m.ID
	}
	base := c.BaseURL
	if u, err := url.Parse(base); err == nil {
		base = u.Redacted()
	}
	return fmt.Sprintf("openai.Config{BaseURL: %q, APIKey: %s, Models: %q, MaxRetries: %d}", base, key, ids, c.MaxRetries)
}

// GoString is String, so that %#v does not print the key either.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the key out of structured logs.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Provider is an infinity.ModelProvider for an OpenAI-compatible chat
// completions endpoint. It is safe for concurrent use.
type Provider struct {
	api        *httpapi.Client // posts to {BaseURL}/chat/completions, with the key
	baseURL    string          // for messages, without a password
	models     infinity.Catalog
	completion bool // send max_completion_tokens rather than max_tokens
}

// String describes p without its key.
func (p *Provider) String() string {
	ids := make([]string, len(p.models))
	for i, m := range p.models {
		ids[i] = m.ID
	}
	return fmt.Sprintf("openai.Provider{BaseURL: %q, Models: %q, MaxRetries: %d}", p.baseURL, ids, p.api.Retries)
}

// GoString is String, so that %#v does not print the key either.
func (p *Provider) GoString() string { return p.String() }

// LogValue keeps the key out of structured logs.
func (p *Provider) LogValue() slog.Value { return slog.StringValue(p.String()) }

var _ infinity.ModelProvider = (*Provider)(nil)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("openai: "+format+": %w", append(args, infinity.ErrInvalid)...)
}

// New validates cfg and returns a provider. Invalid configuration yields an
// error wrapping infinity.ErrInvalid.
func New(cfg Config) (*Provider, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := httpapi.ParseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, invalidf("base URL %v, such as %s or http://localhost:11434/v1", err, DefaultBaseURL)
	}
	official := strings.EqualFold(u.Hostname(), "api.openai.com")
	if official && cfg.APIKey == "" {
		return nil, invalidf("an API key is required for %s (set OPENAI_API_KEY)", cfg.BaseURL)
	}
	if err := infinity.ValidateModels(cfg.Models); err != nil {
		return nil, fmt.Errorf("openai: %w", err)
	}
	p := &Provider{baseURL: u.Redacted(), models: slices.Clone(infinity.Catalog(cfg.Models))}
	switch cfg.MaxTokensParam {
	case "":
		p.completion = official
	case ParamMaxTokens:
	case ParamMaxCompletionTokens:
		p.completion = true
	default:
		return nil, invalidf("MaxTokensParam %q is neither %q nor %q", cfg.MaxTokensParam, ParamMaxTokens, ParamMaxCompletionTokens)
	}
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	header := http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"application/json"},
		"User-Agent":   {userAgent},
	}
	if cfg.APIKey != "" {
		header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	idle := cfg.MaxIdleConns
	if idle <= 0 {
		idle = DefaultMaxIdleConns
	}
	// The endpoint resolves against the base URL as a directory, as the
	// SDK did: .../v1 and .../v1/ both give .../v1/chat/completions.
	p.api = httpapi.New(cfg.HTTPClient, idle, u, httpapi.Endpoint(u, "chat/completions"), header, retries)
	return p, nil
}

// FromEnv returns a provider for OPENAI_BASE_URL (default DefaultBaseURL)
// with the key in OPENAI_API_KEY (optional except for api.openai.com),
// serving models.
func FromEnv(models []infinity.ModelInfo) (*Provider, error) {
	return New(Config{
		BaseURL: os.Getenv("OPENAI_BASE_URL"),
		APIKey:  os.Getenv("OPENAI_API_KEY"),
		Models:  models,
	})
}

// Models returns the configured models.
func (p *Provider) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	return p.models.Models(ctx)
}

func (p *Provider) model(id string) (infinity.ModelInfo, error) {
	if id == "" {
		return p.models[0], nil
	}
	for _, m := range p.models {
		if m.ID == id {
			return m, nil
		}
	}
	return infinity.ModelInfo{}, invalidf("model %q is not configured for %s", id, p.baseURL)
}

// Stream runs one chat completion with streaming. It yields an StreamText per
// content delta as it arrives, then one StreamToolCall per tool call (in the
// order of their index, once the response's finish_reason arrives), then
// StreamDone with the usage and the stop reason.
//
// Errors: throttling (429), 408, 409, 5xx, connection failures and a stream
// that breaks or ends without a finish_reason wrap infinity.ErrRetryable
// (the request-phase ones have already been retried Config.MaxRetries
// times; a 429 is an *infinity.RateLimitedError). Other HTTP errors are
// final and say what to check; they wrap an *Error. A bad request (unknown
// model, bad tool schema) wraps infinity.ErrInvalid. Cancelling ctx yields
// ctx.Err().
func (p *Provider) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		m, err := p.model(req.Model)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		body, err := p.params(m, &req)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		resp, err := p.send(ctx, m.ID, body)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		d := newDecoder(resp.Body)
		defer d.close(resp.Body)
		p.run(ctx, d, yield)
	}
}

// run turns the chunks of a started stream into events.
func (p *Provider) run(ctx context.Context, d *decoder, yield func(infinity.StreamEvent, error) bool) {
	var (
		acc     callAcc
		usage   infinity.Usage
		finish  string
		emitted bool
	)
	emitCalls := func() bool {
		emitted = true
		for _, c := range acc.finish() {
			if !yield(infinity.StreamEvent{Kind: infinity.StreamToolCall, Call: c}, nil) {
				return false
			}
		}
		return true
	}
	for d.next() {
		if err := ctx.Err(); err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		chunk := &d.chunk
		if u := chunk.Usage; u.PromptTokens > 0 || u.CompletionTokens > 0 {
			usage = infinity.Usage{Input: int(u.PromptTokens), Output: int(u.CompletionTokens)}
		}
		for i := range chunk.Choices {
			ch := &chunk.Choices[i]
			if ch.Index != 0 { // n is never set, so there is one choice
				continue
			}
			if t := ch.Delta.Content; t != "" {
				if !yield(infinity.StreamEvent{Kind: infinity.StreamText, Text: t}, nil) {
					return
				}
			}
			if t := ch.Delta.Refusal; t != "" {
				if !yield(infinity.StreamEvent{Kind: infinity.StreamText, Text: t}, nil) {
					return
				}
			}
			for j := range ch.Delta.ToolCalls {
				tc := &ch.Delta.ToolCalls[j]
				acc.add(tc.Index, tc.ID, tc.Function.Name, tc.Function.Arguments)
			}
			if ch.FinishReason != "" && finish == "" {
				finish = ch.FinishReason
				if !emitCalls() {
					return
				}
			}
		}
	}
	if err := d.err; err != nil {
		if cerr := ctx.Err(); cerr != nil {
			yield(infinity.StreamEvent{}, cerr)
			return
		}
		yield(infinity.StreamEvent{}, streamError(err))
		return
	}
	if err := ctx.Err(); err != nil {
		yield(infinity.StreamEvent{}, err)
		return
	}
	if finish == "" {
		yield(infinity.StreamEvent{}, fmt.Errorf("openai: the stream ended without a finish_reason: %w", infinity.ErrRetryable))
		return
	}
	if !emitted && !emitCalls() {
		return
	}
	stop := infinity.StopEnd
	switch {
	case finish == "length":
		stop = infinity.StopMaxTokens
	case finish == "tool_calls" || finish == "function_call" || acc.n > 0:
		// Some servers (Ollama) report "stop" for a response with calls.
		stop = infinity.StopToolUse
	}
	yield(infinity.StreamEvent{Kind: infinity.StreamDone, Usage: usage, Stop: stop}, nil)
}

// callAcc gathers tool-call fragments by index.
type callAcc struct {
	calls []pendingCall
	n     int // calls emitted
}

type pendingCall struct {
	index    int64
	id, name string
	args     []byte
}

func (a *callAcc) add(index int64, id, name, args string) {
	var c *pendingCall
	for i := len(a.calls) - 1; i >= 0; i-- {
		if a.calls[i].index == index {
			c = &a.calls[i]
			break
		}
	}
	// A fragment with a new id at a known index starts another call: some
	// servers send every whole call at index 0.
	if c == nil || (id != "" && c.id != "" && id != c.id) {
		a.calls = append(a.calls, pendingCall{index: index})
		c = &a.calls[len(a.calls)-1]
	}
	if c.id == "" {
		c.id = id
	}
	if name != "" && c.name == "" {
		c.name = name
	}
	c.args = append(c.args, args...)
}

// finish returns the gathered calls in index order and resets a.
func (a *callAcc) finish() []*infinity.ToolCall {
	if len(a.calls) == 0 {
		return nil
	}
	slices.SortStableFunc(a.calls, func(x, y pendingCall) int {
		switch {
		case x.index < y.index:
			return -1
		case x.index > y.index:
			return 1
		}
		return 0
	})
	out := make([]*infinity.ToolCall, len(a.calls))
	for i := range a.calls {
		c := &a.calls[i]
		id := c.id
		if id == "" {
			id = newCallID()
		}
		out[i] = &infinity.ToolCall{ID: id, Name: c.name, Args: argsJSON(c.args)}
	}
	a.n += len(out)
	a.calls = a.calls[:0]
	return out
}

// argsJSON returns s as raw JSON: "{}" when blank, s when it is valid JSON,
// otherwise s as a JSON string (a truncated or malformed call, which the tool
// then rejects), so that the history stays valid JSON.
func argsJSON(b []byte) json.RawMessage {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	q, _ := json.Marshal(string(b))
	return q
}

func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "call_" + hex.EncodeToString(b[:])
}

// params converts req to the chat request.
func (p *Provider) params(m infinity.ModelInfo, req *infinity.CompletionRequest) ([]byte, error) {
	body := chatRequest{Model: m.ID, Messages: messages(req.System, req.Items), Stream: true}
	body.StreamOptions.IncludeUsage = true
	limit := req.MaxTokens
	if limit <= 0 || limit > m.MaxOutput {
		limit = m.MaxOutput
	}
	if p.completion {
		body.MaxCompletionTokens = limit
	} else {
		body.MaxTokens = limit
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, invalidf("the request does not encode: %v", err)
	}
	if len(req.Tools) > 0 { // spliced in: see toolCache
		if b, err = toolCache.AddTo(b, "tools", req.Tools); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// chatRequest is the body of POST /chat/completions.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           int           `json:"max_tokens,omitempty"`
	MaxCompletionTokens int           `json:"max_completion_tokens,omitempty"`
	Stream              bool          `json:"stream"`
	StreamOptions       struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type chatMessage struct {
	Role       string         `json:"role"`
	Content    *string        `json:"content,omitempty"`
	ToolCalls  []chatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

func text(s string) *string { return &s }

// messages converts the system prompt and the history.
func messages(system string, items []infinity.Item) []chatMessage {
	groups := turns.Group(items)
	out := make([]chatMessage, 0, len(groups)+1)
	if system != "" {
		out = append(out, chatMessage{Role: "system", Content: text(system)})
	}
	for i := range groups {
		t := &groups[i]
		switch t.Role {
		case turns.User:
			for j := range t.Results {
				r := &t.Results[j]
				out = append(out, chatMessage{Role: "tool", Content: text(resultText(r)), ToolCallID: r.CallID})
			}
			if t.Text != "" {
				out = append(out, chatMessage{Role: "user", Content: text(t.Text)})
			}
		case turns.Assistant:
			if t.Text == "" && len(t.Calls) == 0 {
				continue
			}
			a := chatMessage{Role: "assistant"}
			if t.Text != "" {
				a.Content = text(t.Text)
			}
			for _, c := range t.Calls {
				tc := chatToolCall{ID: c.ID, Type: "function"}
				tc.Function.Name, tc.Function.Arguments = c.Name, string(turns.Args(c))
				a.ToolCalls = append(a.ToolCalls, tc)
			}
			out = append(out, a)
		}
	}
	return out
}

// resultText is a tool result's text; an error result says it is one.
func resultText(r *infinity.ToolResult) string {
	s := r.Text()
	if r.IsError && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "error") {
		s = "Error: " + s
	}
	return s
}
