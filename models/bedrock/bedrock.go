package bedrock

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
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/schemas"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	infinity "github.com/infinity-runtime/infinity"
)

// ConverseStreamAPI is the part of *bedrockruntime.Client the provider
// uses.
type ConverseStreamAPI interface {
	ConverseStream(ctx context.Context, params *bedrockruntime.ConverseStreamInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseStreamOutput, error)
}

var _ ConverseStreamAPI = (*bedrockruntime.Client)(nil)

// Config configures a Provider.
type Config struct {
	// Client sends the ConverseStream requests, usually a
	// *bedrockruntime.Client (chain.FromConfig builds one from the default AWS
	// configuration chain). Its retryer retries throttling, 5xx and
	// connection errors before the response starts. Required.
	Client ConverseStreamAPI
	// Models lists the models served (Bedrock model IDs, inference profile
	// IDs or ARNs), the first being the default of a request with no Model.
	// At least one is required, each with an ID, a context window and an
	// output limit.
	Models []infinity.ModelInfo
}

// Provider is an infinity.ModelProvider for the Amazon Bedrock
// ConverseStream API. It is safe for concurrent use.
type Provider struct {
	client ConverseStreamAPI
	models infinity.Catalog
}

var _ infinity.ModelProvider = (*Provider)(nil)

// New validates cfg and returns a provider. Invalid configuration yields an
// error wrapping infinity.ErrInvalid.
func New(cfg Config) (*Provider, error) {
	if cfg.Client == nil {
		return nil, invalidf("a client is required (set Config.Client, or use models/bedrock/chain.FromConfig)")
	}
	if err := infinity.ValidateModels(cfg.Models); err != nil {
		return nil, fmt.Errorf("bedrock: %w", err)
	}
	return &Provider{client: cfg.Client, models: slices.Clone(infinity.Catalog(cfg.Models))}, nil
}

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
		in, err := p.input(&req)
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		out, err := p.client.ConverseStream(ctx, in, ownProtocol, keepConnection)
		if err != nil { // the request failed, after the SDK's retries
			yield(infinity.StreamEvent{}, classify(ctx, err, *in.ModelId, false))
			return
		}
		es := out.GetStream()
		if es == nil {
			yield(infinity.StreamEvent{}, fmt.Errorf("bedrock: the response has no event stream: %w", infinity.ErrRetryable))
			return
		}
		defer es.Close()
		events := es.Events()
		var st state
		for open := true; open; {
			select {
			case <-ctx.Done():
				yield(infinity.StreamEvent{}, ctx.Err())
				return
			case e, ok := <-events:
				if !ok {
					open = false
					break
				}
				ev, err := st.handle(e)
				if err != nil {
					yield(infinity.StreamEvent{}, err)
					return
				}
				if ev.Kind != 0 && !yield(ev, nil) {
					return
				}
			}
		}
		if err := es.Err(); err != nil {
			yield(infinity.StreamEvent{}, classify(ctx, err, *in.ModelId, true))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		done, err := st.done()
		if err != nil {
			yield(infinity.StreamEvent{}, err)
			return
		}
		yield(done, nil)
	}
}

// ownProtocol gives one ConverseStream call a protocol of its own. The
// client's default restJson1 protocol (smithy-go v1.28.9) decodes every
// event stream through one shared codec, whose decoder and payload buffer
// are not safe for concurrent streams (the race detector catches two
// overlapping streams of one client); a fresh protocol per call costs a
// few small allocations. A custom protocol is left alone.
func ownProtocol(o *bedrockruntime.Options) {
	if _, ok := o.Protocol.(*restjson1.Protocol); ok {
		o.Protocol = restjson1.New(schemas.AmazonBedrockFrontendService)
	}
}

// keepConnection stops the request's end from closing the connection the
// response streams on. smithy-go (v1.28.9) closes the request body as soon
// as the response headers arrive, and once closed the body's WriteTo
// returns io.EOF. net/http, which reads the body once more after the
// Content-Length bytes to check for extra data, may do so after that
// close; io.Copy passes the io.EOF on as a failed request write, and the
// transport closes the connection, breaking the event stream ("use of
// closed network connection") in perhaps one stream of fifty. Hiding
// WriteTo leaves Read, whose io.EOF means the end of the body.
func keepConnection(o *bedrockruntime.Options) {
	if o.HTTPClient != nil {
		o.HTTPClient = readOnlyBody{o.HTTPClient}
	}
}

// readOnlyBody sends requests with a body that has only Read and Close.
type readOnlyBody struct{ next bedrockruntime.HTTPClient }

func (c readOnlyBody) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.WithContext(req.Context()) // a shallow copy
		req.Body = struct{ io.ReadCloser }{req.Body}
	}
	return c.next.Do(req)
}

// block is a toolUse content block of the response being streamed.
type block struct {
	id   string
	name string
	args []byte // toolUse delta input fragments, concatenated
}

// state follows one response's events.
type state struct {
	blocks    map[int32]*block
	usage     infinity.Usage
	stop      types.StopReason
	stopped   bool   // messageStop seen
	metadata  bool   // metadata seen
	truncated string // a tool call whose input JSON was cut short
}

// handle turns one stream event into at most one stream event.
func (st *state) handle(e types.ConverseStreamOutput) (out infinity.StreamEvent, err error) {
	switch v := e.(type) {
	case *types.ConverseStreamOutputMemberContentBlockStart:
		if tu, ok := v.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
			if st.blocks == nil {
				st.blocks = make(map[int32]*block, 2)
			}
			st.blocks[index(v.Value.ContentBlockIndex)] = &block{id: str(tu.Value.ToolUseId), name: str(tu.Value.Name)}
		}
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch d := v.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			if d.Value != "" {
				return infinity.StreamEvent{Kind: infinity.StreamText, Text: d.Value}, nil
			}
		case *types.ContentBlockDeltaMemberToolUse:
			i := index(v.Value.ContentBlockIndex)
			b := st.blocks[i]
			if b == nil {
				return out, fmt.Errorf("bedrock: a toolUse delta for content block %d, which did not start as a toolUse block: %w", i, infinity.ErrRetryable)
			}
			if d.Value.Input != nil {
				b.args = append(b.args, *d.Value.Input...)
			}
		}
	case *types.ConverseStreamOutputMemberContentBlockStop:
		i := index(v.Value.ContentBlockIndex)
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
	case *types.ConverseStreamOutputMemberMessageStop:
		st.stop, st.stopped = v.Value.StopReason, true
	case *types.ConverseStreamOutputMemberMetadata:
		st.metadata = true
		if u := v.Value.Usage; u != nil {
			st.usage = infinity.Usage{
				Input:  num(u.InputTokens) + num(u.CacheReadInputTokens) + num(u.CacheWriteInputTokens),
				Output: num(u.OutputTokens),
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
	case types.StopReasonToolUse:
		stop = infinity.StopToolUse
	case types.StopReasonMaxTokens:
		stop = infinity.StopMaxTokens
	}
	if st.truncated != "" && stop != infinity.StopMaxTokens {
		return infinity.StreamEvent{}, fmt.Errorf("bedrock: the input of a %q tool call is not a JSON object: %w", st.truncated, infinity.ErrRetryable)
	}
	return infinity.StreamEvent{Kind: infinity.StreamDone, Usage: st.usage, Stop: stop}, nil
}

func index(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func num(p *int32) int {
	if p == nil {
		return 0
	}
	return int(*p)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// jsonSpace is JSON's whitespace (bytes.TrimSpace also trims \f, \v and
// Unicode spaces, which JSON does not allow).
const jsonSpace = " \t\r\n"

// jsonObject reports whether b (already trimmed of JSON whitespace) is
// one JSON object.
func jsonObject(b []byte) bool {
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// classify turns an error of the request (inStream false: no response
// event yet, after the SDK's retries) or of the event stream into the
// provider's error: transient ones wrap infinity.ErrRetryable.
func classify(ctx context.Context, err error, model string, inStream bool) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	where := "the request failed"
	if inStream {
		where = "the stream failed"
	}
	var (
		throttling  *types.ThrottlingException
		unavailable *types.ServiceUnavailableException
		internal    *types.InternalServerException
		notReady    *types.ModelNotReadyException
		streamErr   *types.ModelStreamErrorException
		timeout     *types.ModelTimeoutException
		modelErr    *types.ModelErrorException
		validation  *types.ValidationException
		denied      *types.AccessDeniedException
		notFound    *types.ResourceNotFoundException
		quota       *types.ServiceQuotaExceededException
		conflict    *types.ConflictException
	)
	switch {
	case errors.As(err, &throttling):
		return &infinity.RateLimitedError{Err: fmt.Errorf("bedrock: %s: throttled: %w", where, err)}
	case errors.As(err, &unavailable), errors.As(err, &internal), errors.As(err, &notReady),
		errors.As(err, &streamErr), errors.As(err, &timeout), errors.As(err, &modelErr):
		return fmt.Errorf("bedrock: %s: %w: %w", where, err, infinity.ErrRetryable)
	case errors.As(err, &denied):
		return fmt.Errorf("bedrock: %s: access denied: check the AWS credentials, that the IAM identity may call bedrock:InvokeModelWithResponseStream, and that model access to %q is granted in this region: %w", where, model, err)
	case errors.As(err, &notFound):
		return fmt.Errorf("bedrock: %s: not found: check the model ID %q (or inference profile) and that it is offered in this region: %w", where, model, err)
	case errors.As(err, &validation):
		return fmt.Errorf("bedrock: %s: the request was rejected; check the model ID %q, maxTokens, tool schemas and history: %w: %w", where, model, err, infinity.ErrInvalid)
	case errors.As(err, &quota):
		return fmt.Errorf("bedrock: %s: a service quota is exceeded; check the account's Bedrock quotas: %w", where, err)
	case errors.As(err, &conflict):
		return fmt.Errorf("bedrock: %s: %w", where, err)
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		switch code := status.HTTPStatusCode(); {
		case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout, code >= 500:
			return fmt.Errorf("bedrock: %s: HTTP %d: %w: %w", where, code, err, infinity.ErrRetryable)
		case code == http.StatusUnauthorized, code == http.StatusForbidden:
			return fmt.Errorf("bedrock: %s: HTTP %d: check the AWS credentials and model access to %q: %w", where, code, model, err)
		case code == http.StatusNotFound:
			return fmt.Errorf("bedrock: %s: HTTP 404: check the model ID %q and the endpoint: %w", where, model, err)
		case code == http.StatusBadRequest:
			return fmt.Errorf("bedrock: %s: HTTP 400: %w: %w", where, err, infinity.ErrInvalid)
		case code >= 400:
			return fmt.Errorf("bedrock: %s: HTTP %d: %w", where, code, err)
		}
	}
	var (
		send *smithyhttp.RequestSendError
		uerr *url.Error
		nerr net.Error
	)
	if errors.As(err, &send) || errors.As(err, &uerr) || errors.As(err, &nerr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("bedrock: %s: connection error: %w: %w", where, err, infinity.ErrRetryable)
	}
	if inStream { // a broken or undecodable stream
		return fmt.Errorf("bedrock: the stream broke: %w: %w", err, infinity.ErrRetryable)
	}
	return fmt.Errorf("bedrock: %s: %w", where, err)
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("bedrock: "+format+": %w", append(args, infinity.ErrInvalid)...)
}
