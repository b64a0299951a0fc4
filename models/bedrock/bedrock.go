package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/url"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/awsendpoint"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
	"github.com/infinity-runtime/infinity/tools/httpclient"
)

// Config configures a Provider.
type Config struct {
	// AWS is the AWS configuration the provider takes its settings from:
	// Region and Credentials (both required), with which the requests are
	// signed (SigV4, service "bedrock"); HTTPClient, which sends them
	// (default: one per provider on a clone of http.DefaultTransport,
	// keeping DefaultMaxIdleConns idle connections); RetryMaxAttempts
	// (default DefaultMaxAttempts); and the endpoint settings the SDK's
	// client reads: BaseEndpoint (AWS_ENDPOINT_URL) and, among
	// ConfigSources, the "Bedrock Runtime" service endpoint
	// (AWS_ENDPOINT_URL_BEDROCK_RUNTIME), the flag that ignores configured
	// endpoints, and the FIPS and dual-stack flags. Its other fields
	// (Retryer, RetryMode, ...) are not used.
	AWS aws.Config
	// Models lists the models served (Bedrock model IDs, inference profile
	// IDs or ARNs), the first being the default of a request with no Model.
	// At least one is required, each with an ID, a context window and an
	// output limit.
	Models []infinity.ModelInfo
}

// Provider is an infinity.ModelProvider for the Amazon Bedrock
// ConverseStream API. It is safe for concurrent use.
type Provider struct {
	client   *httpclient.SigV4
	endpoint *url.URL
	attempts int
	models   infinity.Catalog
	// delay is the wait before the retry that follows attempt (backoff;
	// tests shorten it).
	delay func(attempt int, throttle bool) time.Duration
}

var _ infinity.ModelProvider = (*Provider)(nil)

// New validates cfg and returns a provider. Invalid configuration (no
// region or credentials, a malformed endpoint, no models) yields an error
// wrapping infinity.ErrInvalid.
func New(cfg Config) (*Provider, error) {
	if err := infinity.ValidateModels(cfg.Models); err != nil {
		return nil, fmt.Errorf("bedrock: %w", err)
	}
	if cfg.AWS.Credentials == nil {
		return nil, invalidf("AWS credentials are required (set Config.AWS.Credentials, or use models/bedrock/chain.FromConfig)")
	}
	ep, err := awsendpoint.Resolve(&cfg.AWS, sdkID, hostPrefix)
	if err != nil {
		return nil, fmt.Errorf("bedrock: %w", err)
	}
	c, err := newClient(&cfg.AWS)
	if err != nil {
		return nil, err
	}
	attempts := cfg.AWS.RetryMaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	return &Provider{client: c, endpoint: ep, attempts: attempts, models: slices.Clone(infinity.Catalog(cfg.Models)), delay: retryDelay}, nil
}

// Endpoint returns the endpoint the requests go to, as resolved from the
// AWS configuration.
func (p *Provider) Endpoint() string { return p.endpoint.String() }

// Models returns the configured models.
func (p *Provider) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	return p.models.Models(ctx)
}

// Stream runs one ConverseStream request. See the package documentation
// for the events and errors.
func (p *Provider) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		model, body, err := p.request(&req)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		resp, err := p.send(ctx, streamURL(p.endpoint, model), model, body)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		defer resp.Body.Close()
		run(ctx, resp.Body, model, yield)
	}
}

// run turns the messages of a started event stream into events.
func run(ctx context.Context, body io.Reader, model string, yield func(infinity.StreamEvent, error) bool) {
	dec := frameDecoder{r: body}
	var (
		f  frame
		st state
	)
	for {
		err := dec.next(&f)
		if cerr := ctx.Err(); cerr != nil {
			yield(infinity.StreamEvent{}, cerr)
			return
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			yield(infinity.StreamEvent{}, fmt.Errorf("bedrock: the stream broke: %w: %w", err, infinity.ErrRetryable))
			return
		}
		switch string(f.messageType) {
		case "event":
			ev, err := st.handle(f.eventType, f.payload)
			if err != nil {
				yield(infinity.StreamEvent{}, err)
				return
			}
			if ev.Kind != 0 && !yield(ev, nil) {
				return
			}
		case "exception":
			yield(infinity.StreamEvent{}, classify(exceptionError(&f), model, "the stream failed"))
			return
		case "error":
			e := &Error{Code: string(f.errorCode), Message: string(f.errorMessage)}
			yield(infinity.StreamEvent{}, fmt.Errorf("bedrock: the stream broke: %w: %w", e, infinity.ErrRetryable))
			return
		default:
			yield(infinity.StreamEvent{}, fmt.Errorf("bedrock: the stream broke: a message of type %q: %w", httpapi.Clip(string(f.messageType), 100), infinity.ErrRetryable))
			return
		}
	}
	done, err := st.done()
	if err != nil {
		yield(infinity.StreamEvent{}, err)
		return
	}
	yield(done, nil)
}

// exceptionError reads an exception message: its type, and the message of its
// JSON payload ({"message": ...}) when it has one.
func exceptionError(f *frame) *Error {
	var body struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(f.payload, &body) // a payload without one leaves the type to speak
	return &Error{Code: string(f.exceptionType), Message: body.Message}
}

// block is a toolUse content block of the response being streamed.
type block struct {
	id   string
	name string
	args []byte // toolUse delta input fragments, concatenated
}

// eventPayload is the payload of the events the provider reads.
type eventPayload struct {
	ContentBlockIndex int32 `json:"contentBlockIndex"`
	Start             *struct {
		ToolUse *struct {
			ToolUseID string `json:"toolUseId"`
			Name      string `json:"name"`
		} `json:"toolUse"`
	} `json:"start"`
	Delta *struct {
		Text    string `json:"text"`
		ToolUse *struct {
			Input string `json:"input"`
		} `json:"toolUse"`
	} `json:"delta"`
	StopReason string `json:"stopReason"`
	Usage      *struct {
		InputTokens           int64 `json:"inputTokens"`
		OutputTokens          int64 `json:"outputTokens"`
		CacheReadInputTokens  int64 `json:"cacheReadInputTokens"`
		CacheWriteInputTokens int64 `json:"cacheWriteInputTokens"`
	} `json:"usage"`
}

// state follows one response's events.
type state struct {
	blocks    map[int32]*block
	usage     infinity.Usage
	stop      string
	stopped   bool   // messageStop seen
	metadata  bool   // metadata seen
	truncated string // a tool call whose input JSON was cut short
}

// handle turns one event (its :event-type and JSON payload) into at most
// one stream event. Events the provider does not use (messageStart, and
// any the API adds) are skipped.
func (st *state) handle(typ, payload []byte) (out infinity.StreamEvent, err error) {
	switch string(typ) {
	case "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata":
	default:
		return out, nil
	}
	var e eventPayload
	if err := json.Unmarshal(payload, &e); err != nil {
		return out, fmt.Errorf("bedrock: the stream broke: a %s event does not decode: %w: %w", typ, err, infinity.ErrRetryable)
	}
	switch string(typ) {
	case "contentBlockStart":
		if e.Start != nil && e.Start.ToolUse != nil {
			if st.blocks == nil {
				st.blocks = make(map[int32]*block, 2)
			}
			st.blocks[e.ContentBlockIndex] = &block{id: e.Start.ToolUse.ToolUseID, name: e.Start.ToolUse.Name}
		}
	case "contentBlockDelta":
		switch d := e.Delta; {
		case d == nil:
		case d.ToolUse != nil:
			b := st.blocks[e.ContentBlockIndex]
			if b == nil {
				return out, fmt.Errorf("bedrock: a toolUse delta for content block %d, which did not start as a toolUse block: %w", e.ContentBlockIndex, infinity.ErrRetryable)
			}
			b.args = append(b.args, d.ToolUse.Input...)
		case d.Text != "":
			return infinity.StreamEvent{Kind: infinity.StreamText, Text: d.Text}, nil
		}
	case "contentBlockStop":
		i := e.ContentBlockIndex
		b := st.blocks[i]
		if b == nil {
			return out, nil
		}
		delete(st.blocks, i)
		args := bytes.Trim(b.args, jsonSpace)
		if len(args) == 0 {
			args = []byte("{}")
		}
		if !jsonObject(args) {
			// Held back: at max_tokens the input of the last call is cut
			// short, and the call is dropped; otherwise the stream is broken.
			st.truncated = b.name
			return out, nil
		}
		return infinity.StreamEvent{Kind: infinity.StreamToolCall, Call: &infinity.ToolCall{ID: b.id, Name: b.name, Args: args}}, nil
	case "messageStop":
		st.stop, st.stopped = e.StopReason, true
	case "metadata":
		st.metadata = true
		if u := e.Usage; u != nil {
			st.usage = infinity.Usage{
				Input:  int(u.InputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens),
				Output: int(u.OutputTokens),
			}
		}
	}
	return out, nil
}

// done returns the StreamDone of a stream that ended cleanly.
func (st *state) done() (infinity.StreamEvent, error) {
	if !st.stopped {
		return infinity.StreamEvent{}, fmt.Errorf("bedrock: the stream ended before messageStop: %w", infinity.ErrRetryable)
	}
	if !st.metadata {
		return infinity.StreamEvent{}, fmt.Errorf("bedrock: the stream ended before its metadata (usage): %w", infinity.ErrRetryable)
	}
	stop := infinity.StopEnd
	switch st.stop {
	case "tool_use":
		stop = infinity.StopToolUse
	case "max_tokens":
		stop = infinity.StopMaxTokens
	}
	if st.truncated != "" && stop != infinity.StopMaxTokens {
		return infinity.StreamEvent{}, fmt.Errorf("bedrock: the input of a %q tool call is not a JSON object: %w", st.truncated, infinity.ErrRetryable)
	}
	return infinity.StreamEvent{Kind: infinity.StreamDone, Usage: st.usage, Stop: stop}, nil
}

// jsonSpace is JSON's whitespace (bytes.TrimSpace also trims \f, \v and
// Unicode spaces, which JSON does not allow).
const jsonSpace = " \t\r\n"

// jsonObject reports whether b (already trimmed of JSON whitespace) is
// one JSON object.
func jsonObject(b []byte) bool {
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("bedrock: "+format+": %w", append(args, infinity.ErrInvalid)...)
}
