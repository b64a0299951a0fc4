package mcp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// tool is one MCP tool as an infinity.Tool.
type tool struct {
	srv  *Server
	spec infinity.ToolSpec
}

func (t *tool) Spec() infinity.ToolSpec { return t.spec }

// CallTimeout is the server's call timeout: the engine bounds a call by it
// (actors.TimedTool) rather than by its own default.
func (t *tool) CallTimeout() time.Duration { return t.srv.opts.timeout }

// Invoke calls the tool on the server within the server's call timeout
// (or ctx's deadline, if that comes first). Every failure becomes a result
// with IsError set; the error is always nil, so the model reads a message
// written for it rather than a Go error string.
func (t *tool) Invoke(ctx context.Context, _ infinity.ToolEnv, call infinity.ToolCall) (*infinity.ToolResult, error) {
	args, err := decodeArgs(call.Args)
	if err != nil {
		return t.fail(call, fmt.Sprintf("the arguments of %s are not a JSON object (%v); call it again with an object matching its input schema", t.spec.Name, err)), nil
	}
	limit := bound{d: t.srv.opts.timeout, what: "the call timeout of MCP server " + t.srv.name}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < limit.d {
			limit = bound{d: left.Round(100 * time.Millisecond), what: "the runtime's limit on one tool call"}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.srv.opts.timeout)
	defer cancel()
	sess, done, err := t.srv.link.acquire(ctx)
	if err != nil && needsUser(err) {
		msg, _ := t.explain(ctx, err, limit)
		return t.fail(call, msg), nil
	}
	if err != nil {
		return t.fail(call, fmt.Sprintf("%s could not run: MCP server %s is unreachable (%v); try again later", t.spec.Name, t.srv.name, err)), nil
	}
	res, err := sess.CallTool(ctx, &sdk.CallToolParams{Name: t.spec.Name, Arguments: args})
	if err != nil {
		msg, broken := t.explain(ctx, err, limit)
		done(broken)
		return t.fail(call, msg), nil
	}
	done(nil)
	out := &infinity.ToolResult{CallID: call.ID, Parts: toParts(res.Content), IsError: res.IsError}
	if len(out.Parts) == 0 && res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			out.Parts = []infinity.Part{{Type: "text", Text: string(b)}}
		}
	}
	if len(out.Parts) == 0 {
		text := "(no content)"
		if res.IsError {
			text = t.spec.Name + " failed without saying why"
		}
		out.Parts = []infinity.Part{{Type: "text", Text: text}}
	}
	return out, nil
}

// bound is what limits a call: its duration and what sets it.
type bound struct {
	d    time.Duration
	what string
}

// explain turns a call error into a message the model can act on, and
// returns err as broken when the transport failed (the next call
// reconnects, or starts a local server again).
func (t *tool) explain(ctx context.Context, err error, limit bound) (string, error) {
	var wire *jsonrpc.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return fmt.Sprintf("%s did not answer within %s (%s) and was abandoned; it may still have had an effect. Try again with a smaller request, or do without it", t.spec.Name, limit.d, limit.what), nil
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("%s was cancelled before it answered", t.spec.Name), nil
	case needsUser(err):
		// The server wants (new) authorization; the session is fine.
		return fmt.Sprintf("%s could not run: MCP server %s wants the user's authorization again, and the user was asked for it; try again once it is given", t.spec.Name, t.srv.name), nil
	case errors.As(err, &wire):
		// The server answered with a protocol error: unknown tool, arguments
		// that fail its schema, and so on. The session is fine.
		return fmt.Sprintf("MCP server %s refused %s: %s", t.srv.name, t.spec.Name, wire.Message), nil
	default:
		return fmt.Sprintf("%s failed: the connection to MCP server %s broke (%v); the next call reconnects, so you may try again", t.spec.Name, t.srv.name, err), err
	}
}

func (t *tool) fail(call infinity.ToolCall, msg string) *infinity.ToolResult {
	return &infinity.ToolResult{CallID: call.ID, IsError: true, Parts: []infinity.Part{{Type: "text", Text: msg}}}
}

// decodeArgs checks that args is a JSON object; empty args mean {}.
func decodeArgs(args json.RawMessage) (map[string]any, error) {
	if len(strings.TrimSpace(string(args))) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(args, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("got null")
	}
	return m, nil
}

// toParts converts MCP content: text and images pass through; other kinds
// are replaced by a note saying what was left out.
func toParts(content []sdk.Content) []infinity.Part {
	parts := make([]infinity.Part, 0, len(content))
	for _, c := range content {
		switch c := c.(type) {
		case *sdk.TextContent:
			parts = append(parts, infinity.Part{Type: "text", Text: c.Text})
		case *sdk.ImageContent:
			parts = append(parts, infinity.Part{Type: "image", Data: base64.StdEncoding.EncodeToString(c.Data), MediaType: c.MIMEType})
		case *sdk.AudioContent:
			parts = append(parts, note("audio (%s, %d bytes)", c.MIMEType, len(c.Data)))
		case *sdk.ResourceLink:
			parts = append(parts, infinity.Part{Type: "text", Text: fmt.Sprintf("[resource link: %s %s]", c.Name, c.URI)})
		case *sdk.EmbeddedResource:
			if r := c.Resource; r != nil && r.Text != "" {
				parts = append(parts, infinity.Part{Type: "text", Text: fmt.Sprintf("[resource %s]\n%s", r.URI, r.Text)})
			} else if r != nil {
				parts = append(parts, note("an embedded binary resource %s (%s)", r.URI, r.MIMEType))
			}
		default:
			parts = append(parts, note("content of type %T", c))
		}
	}
	return parts
}

func note(format string, args ...any) infinity.Part {
	return infinity.Part{Type: "text", Text: "[left out: " + fmt.Sprintf(format, args...) + ", which this runtime cannot pass on]"}
}
