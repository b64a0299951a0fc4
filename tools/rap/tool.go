package rap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/backoff"
)

// ErrRejected: the tool server answered an invocation with a 4xx or another
// non-200, non-5xx status; it was not retried.
var ErrRejected = errors.New("invocation rejected")

// Retry bounds invocation retries: exponential backoff from Base, doubled
// per attempt up to Max, with full jitter.
type Retry struct {
	Attempts int           // total tries; 0 means 4
	Base     time.Duration // 0 means 200ms
	Max      time.Duration // 0 means 3s
	// Timeout bounds one try (of a server without a CallTimeout of its
	// own); 0 means 5s (four tries then fit in the engine's default 30s
	// tool timeout). A tool must acknowledge at once, so a try that takes
	// longer is treated like a connection error.
	Timeout time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 4
	}
	if r.Base <= 0 {
		r.Base = 200 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 3 * time.Second
	}
	if r.Timeout <= 0 {
		r.Timeout = 5 * time.Second
	}
	return r
}

// delay returns the pause before retry n (1-based): a random duration in
// [d/2, d] with d = min(Max, Base·2^(n-1)).
func (r Retry) delay(n int) time.Duration { return backoff.Delay(r.Base, r.Max, n) }

// Tool is one discovered RAP tool, an asynchronous infinity.Tool: Invoke
// only dispatches, and the result arrives later through the callback URL.
type Tool struct {
	def          ToolDef
	endpoint     string
	fetchedFrom  string  // the base URL the manifest came from
	srv          *server // the server that offers it
	client       infinity.HTTPClient
	tokens       Tokens
	callbackBase string
	retry        Retry
}

// Def returns the tool's manifest entry.
func (t *Tool) Def() ToolDef { return t.def }

// Endpoint returns the toolset endpoint the tool is invoked at.
func (t *Tool) Endpoint() string { return t.endpoint }

// Spec describes the tool to the model. Descriptions are the tool author's
// and are passed on as text only.
func (t *Tool) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: t.def.Name, Description: t.def.Description, Schema: t.def.InputSchema, Async: true}
}

// Invoke POSTs the invocation for call to the toolset's endpoint. The
// invocation id is call.ID, so a repeated Invoke of the same call (the
// engine may repeat one after a crash) sends the same invocation. Each try
// is bounded by the server's call timeout (Server.CallTimeout, else
// Retry.Timeout); a try that runs out of it, a connection error and a 5xx
// are retried with backoff (Retry); anything else but 200 is not, and
// returns an error wrapping ErrRejected. Once the tries are spent the last
// error is returned wrapping infinity.ErrRetryable (and ErrTimeout when
// the last try timed out). A local server is started first if it is not
// running, and each try goes to its current address; a server that
// cannot be started fails the call at once. The engine
// (actors.engine.invokeAsync) turns any returned error into an error tool
// result for the call, so the thread never waits for a result that cannot
// come. The acknowledgement body is ignored.
func (t *Tool) Invoke(ctx context.Context, env infinity.ToolEnv, call infinity.ToolCall) (*infinity.ToolResult, error) {
	body, err := t.invocation(env, call)
	if err != nil {
		return nil, err
	}
	r := t.retry.withDefaults()
	timeout := t.tryTimeout(r)
	var last error
	for n := 1; n <= r.Attempts; n++ {
		if n > 1 {
			if err := backoff.Sleep(ctx, r.delay(n-1)); err != nil {
				return nil, fmt.Errorf("rap tool %s at %s: %w (last: %w)", t.def.Name, t.endpoint, err, last)
			}
		}
		retry, err := t.try(ctx, body, timeout)
		if err == nil {
			return nil, nil
		}
		last = err
		if !retry {
			return nil, fmt.Errorf("rap tool %s: %w; no result will arrive for this call", t.def.Name, err)
		}
	}
	return nil, fmt.Errorf("rap tool %s: %d tries failed, last: %w; no result will arrive for this call: %w",
		t.def.Name, r.Attempts, last, infinity.ErrRetryable)
}

// tryTimeout is the bound of one try.
func (t *Tool) tryTimeout(r Retry) time.Duration {
	if t.srv != nil && t.srv.call > 0 {
		return t.srv.call
	}
	return r.Timeout
}

// CallTimeout is the most a dispatch can take (actors.TimedTool), when
// the server has a call timeout of its own or is local (and may need
// starting first): every try, the pauses between them and one start. The
// engine then bounds a call by it rather than by its own default, so the
// server's timeouts are the ones that end a call. Zero otherwise.
func (t *Tool) CallTimeout() time.Duration {
	if t.srv == nil || t.srv.call <= 0 && t.srv.local == nil {
		return 0
	}
	r := t.retry.withDefaults()
	d := time.Duration(r.Attempts) * t.tryTimeout(r)
	for n := 1; n < r.Attempts; n++ {
		p := r.Max
		if n <= 30 && r.Base<<(n-1) > 0 && r.Base<<(n-1) < r.Max {
			p = r.Base << (n - 1)
		}
		d += p
	}
	if t.srv.local != nil {
		d += t.srv.connect
	}
	return d
}

// try makes one try at the server's current address.
func (t *Tool) try(ctx context.Context, body []byte, timeout time.Duration) (retry bool, err error) {
	endpoint := t.endpoint
	if t.srv != nil && t.srv.local != nil {
		base, done, err := t.srv.acquire(ctx)
		if err != nil {
			return false, fmt.Errorf("RAP server %s could not be started: %w", t.srv.name, err)
		}
		defer done()
		endpoint = rebase(t.endpoint, t.fetchedFrom, base)
	}
	return t.post(ctx, endpoint, body, timeout)
}

func (t *Tool) invocation(env infinity.ToolEnv, call infinity.ToolCall) ([]byte, error) {
	args := bytes.TrimSpace(call.Args)
	if len(args) == 0 || bytes.Equal(args, []byte("null")) {
		args = []byte("{}")
	}
	if args[0] != '{' || !json.Valid(args) {
		return nil, fmt.Errorf("rap tool %s: arguments must be a JSON object: %w", t.def.Name, infinity.ErrInvalid)
	}
	inv := Invocation{
		Operation:   t.def.Name,
		Arguments:   args,
		ID:          call.ID,
		CallbackURL: t.tokens.CallbackURL(t.callbackBase, env.Thread, call.ID),
		GroupID:     string(env.Thread),
	}
	if len(env.Stack) > 1 {
		for _, a := range env.Stack[:len(env.Stack)-1] {
			inv.ThreadAncestors = append(inv.ThreadAncestors, string(a))
		}
	}
	if env.UserID != "" {
		inv.UserID = &env.UserID
	}
	b, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("rap tool %s: encode invocation: %w", t.def.Name, err)
	}
	return b, nil
}

// post makes one attempt and says whether a failure may be retried.
func (t *Tool) post(ctx context.Context, endpoint string, body []byte, timeout time.Duration) (retry bool, err error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, _, err := postJSON(tctx, t.client, endpoint, body)
	if err != nil {
		if t.srv != nil {
			err = t.srv.timedOut(ctx, tctx, err, timeout, "call")
		}
		return ctx.Err() == nil, fmt.Errorf("post to %s: %w", endpoint, err)
	}
	switch {
	case resp == http.StatusOK:
		return false, nil
	case resp >= 500:
		return true, fmt.Errorf("the server at %s answered HTTP %d", endpoint, resp)
	}
	return false, fmt.Errorf("the server at %s answered HTTP %d: %w", endpoint, resp, ErrRejected)
}

// postJSON POSTs body to u and returns the status and the start of the
// response body (for error messages); the rest is drained, up to a bound,
// to keep the connection reusable.
func postJSON(ctx context.Context, client infinity.HTTPClient, u string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, string(head), nil
}
