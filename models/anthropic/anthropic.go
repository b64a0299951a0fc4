package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/ssestream"

	infinity "github.com/infinity-runtime/infinity"
)

// DefaultMaxRetries is the SDK's retry budget (attempts after the first,
// before the first byte of a response) when Config.MaxRetries is 0.
const DefaultMaxRetries = 3

// DefaultMaxTokens is the output budget of a request whose MaxTokens is 0.
const DefaultMaxTokens = 4096

// Config configures a Provider.
type Config struct {
	// BaseURL is the API's base URL, e.g. "https://api.anthropic.com/" (the
	// SDK's default when empty). The provider posts to BaseURL + "v1/messages".
	BaseURL string
	// APIKey authenticates the requests. It is required; the provider never
	// logs it. FromEnv reads it from ANTHROPIC_API_KEY.
	APIKey string
	// Models lists the models served, the first being the default of a
	// request with no Model. At least one is required, each with an ID, a
	// context window and an output limit.
	Models []infinity.ModelInfo
	// HTTPClient sends the requests (a client without a timeout when nil:
	// streams are long, and the request context bounds them).
	HTTPClient *http.Client
	// MaxRetries is how often the SDK retries a request that failed before
	// the first byte of the response (429, 529, 408, 409, 5xx, connection
	// errors): 0 means DefaultMaxRetries, a negative value means never.
	// Failures after that are reported as wrapping infinity.ErrRetryable,
	// and the engine retries with its own backoff.
	MaxRetries int
}

// Provider is an infinity.ModelProvider for the Anthropic Messages API. It
// is safe for concurrent use.
type Provider struct {
	client anthropic.Client
	models infinity.Catalog
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
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	opts := []option.RequestOption{
		// The provider resolves its own credentials and base URL: the SDK
		// must not add any from the environment or a profile on disk.
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(cfg.APIKey),
		// The Messages API authenticates API keys with x-api-key; this SDK
		// version sends them as a bearer token, so send the header too.
		option.WithHeader("x-api-key", cfg.APIKey),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(retries),
	}
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, invalidf("Config.BaseURL %q is not an http(s) URL", cfg.BaseURL)
		}
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	return &Provider{
		client: anthropic.NewClient(opts...),
		models: slices.Clone(infinity.Catalog(cfg.Models)),
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
		params, err := p.params(&req)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		// The SDK builds, sends and retries the request; the events are
		// decoded into the few fields handle reads (the SDK's event union
		// costs more to decode than the rest of a turn).
		var raw *http.Response
		err = p.client.Post(ctx, "v1/messages", params, &raw, option.WithJSONSet("stream", true))
		s := ssestream.NewStream[event](ssestream.NewDecoder(raw), err)
		defer s.Close()
		if err := s.Err(); err != nil { // the request failed, after the SDK's retries
			yield(infinity.StreamEvent{}, requestError(ctx, err))
			return
		}
		var st state
		for s.Next() {
			if err := ctx.Err(); err != nil {
				yield(infinity.StreamEvent{}, err)
				return
			}
			cur := s.Current()
			ev, err, done := st.handle(&cur)
			if err != nil {
				yield(infinity.StreamEvent{}, err)
				return
			}
			if ev.Kind != 0 && !yield(ev, nil) {
				return
			}
			if done {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield(infinity.StreamEvent{}, streamError(ctx, err))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		yield(infinity.StreamEvent{}, fmt.Errorf("anthropic: the stream ended before message_stop: %w", infinity.ErrRetryable))
	}
}

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
	Usage usage `json:"usage"`
}

type usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// block is a content block of the response being streamed.
type block struct {
	tool  bool
	id    string
	name  string
	args  []byte // input_json_delta fragments, concatenated
	start []byte // the input of content_block_start, if not empty
}

// state follows one response's SSE events.
type state struct {
	blocks    map[int64]*block
	usage     infinity.Usage
	stop      string
	truncated string // a tool call whose input JSON was cut short
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
			b := &block{tool: true, id: cb.ID, name: cb.Name}
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
		case string(anthropic.StopReasonToolUse):
			stop = infinity.StopToolUse
		case string(anthropic.StopReasonMaxTokens):
			stop = infinity.StopMaxTokens
		}
		if st.truncated != "" && stop != infinity.StopMaxTokens {
			return out, fmt.Errorf("anthropic: the input of a %q tool call is not a JSON object: %w", st.truncated, infinity.ErrRetryable), false
		}
		return infinity.StreamEvent{Kind: infinity.StreamDone, Usage: st.usage, Stop: stop}, nil, true
	}
	return out, nil, false
}

func (st *state) block(i int64, b *block) {
	if st.blocks == nil {
		st.blocks = make(map[int64]*block, 2)
	}
	st.blocks[i] = b
}

// jsonObject reports whether b is one JSON object.
func jsonObject(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// requestError classifies an error of the request, before any response
// event: API errors by status, connection errors as retryable.
func requestError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var apiErr *anthropic.Error
	if errors.As(err, &apiErr) {
		return statusError(apiErr)
	}
	var (
		uerr *url.Error
		nerr net.Error
	)
	if errors.As(err, &uerr) || errors.As(err, &nerr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("anthropic: connection failed: %w: %w", err, infinity.ErrRetryable)
	}
	return fmt.Errorf("anthropic: %w", err)
}

// streamError classifies an error while reading the stream: an `error`
// event by its type, anything else as a broken stream (retryable).
func streamError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var apiErr *anthropic.Error
	if errors.As(err, &apiErr) {
		if apiErr.StatusCode >= 400 {
			return statusError(apiErr)
		}
		switch apiErr.Type() { // an error event in a 200 stream
		case "invalid_request_error", "authentication_error", "permission_error", "not_found_error", "request_too_large", "billing_error":
			return fmt.Errorf("anthropic: error event %q in the stream: %s", apiErr.Type(), apiErr.Message)
		}
		return fmt.Errorf("anthropic: error event %q in the stream: %s: %w", apiErr.Type(), apiErr.Message, infinity.ErrRetryable)
	}
	return fmt.Errorf("anthropic: the stream broke: %w: %w", err, infinity.ErrRetryable)
}

// statusError classifies an HTTP error response.
func statusError(e *anthropic.Error) error {
	code := e.StatusCode
	switch {
	case code == http.StatusTooManyRequests:
		var after time.Duration
		if e.Response != nil {
			after = infinity.RetryAfter(e.Response.Header, time.Now())
		}
		return &infinity.RateLimitedError{RetryAfter: after, Err: fmt.Errorf("anthropic: HTTP 429 (%s) after the SDK's retries: %w", e.Type(), e)}
	case code == http.StatusRequestTimeout, code == http.StatusConflict, code >= 500:
		return fmt.Errorf("anthropic: HTTP %d (%s) after the SDK's retries: %w: %w", code, e.Type(), e, infinity.ErrRetryable)
	case code == http.StatusUnauthorized:
		return fmt.Errorf("anthropic: HTTP 401: the API key was rejected; check Config.APIKey (ANTHROPIC_API_KEY): %w", e)
	case code == http.StatusForbidden:
		return fmt.Errorf("anthropic: HTTP 403: the API key may not use this model or resource; check the key's workspace and permissions: %w", e)
	case code == http.StatusNotFound:
		return fmt.Errorf("anthropic: HTTP 404: check the model name and Config.BaseURL: %w", e)
	case code == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("anthropic: HTTP 413: the request is too large; shorten the history: %w: %w", e, infinity.ErrInvalid)
	case code == http.StatusBadRequest:
		return fmt.Errorf("anthropic: HTTP 400: the API rejected the request; check the model, max_tokens, tool schemas and history (%s): %w: %w", e.Message, e, infinity.ErrInvalid)
	}
	return fmt.Errorf("anthropic: HTTP %d: %w", code, e)
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("anthropic: "+format+": %w", append(args, infinity.ErrInvalid)...)
}
