package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// ErrNoDaemon is returned by Dial when no daemon runs for the home.
var ErrNoDaemon = errors.New("no daemon is running")

// Client calls a daemon's HTTP API.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the daemon at addr (host:port).
func NewClient(addr, token string) *Client {
	return &Client{base: "http://" + addr, token: token, hc: &http.Client{}}
}

// Dial finds the daemon of home through its daemon.json and token files.
func Dial(home string) (*Client, Info, error) {
	info, tok, err := Locate(home)
	if err != nil {
		return nil, info, err
	}
	return NewClient(info.Addr, tok), info, nil
}

// Locate reads where home's daemon listens and its token; ErrNoDaemon when
// none runs for home.
func Locate(home string) (Info, string, error) {
	info, err := ReadInfo(home)
	if errors.Is(err, fs.ErrNotExist) {
		return info, "", fmt.Errorf("%w for %s (start one with \"infinity daemon start\", or \"infinity daemon\" in another terminal)", ErrNoDaemon, home)
	}
	if err != nil {
		return info, "", err
	}
	tok, err := ReadToken(home)
	if err != nil {
		return info, "", fmt.Errorf("read the daemon's token: %w", err)
	}
	return info, tok, nil
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns the response when its status is 2xx;
// otherwise the API's error as an *APIError.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w at %s (%w); start one with \"infinity daemon start\"", ErrNoDaemon, c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		Error *APIError `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e); err != nil || e.Error == nil {
		return nil, &APIError{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("%s %s: HTTP %s", method, path, resp.Status)}
	}
	e.Error.Status = resp.StatusCode
	return nil, e.Error
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (StatusView, error) {
	var v StatusView
	return v, c.do(ctx, "GET", "/v1/status", nil, &v)
}

// Shutdown asks the daemon to stop.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, "POST", "/v1/shutdown", nil, nil)
}

// RegisterAgent registers an agent file.
func (c *Client) RegisterAgent(ctx context.Context, req AgentRequest) (AgentInfo, error) {
	var v AgentInfo
	return v, c.do(ctx, "POST", "/v1/agents", req, &v)
}

// Agents lists the registered agents.
func (c *Client) Agents(ctx context.Context) ([]AgentInfo, error) {
	var v []AgentInfo
	return v, c.do(ctx, "GET", "/v1/agents", nil, &v)
}

// Start starts a root thread.
func (c *Client) Start(ctx context.Context, req StartRequest) (Started, error) {
	var v Started
	return v, c.do(ctx, "POST", "/v1/threads", req, &v)
}

// Send sends user text to a thread.
func (c *Client) Send(ctx context.Context, id infinity.ThreadID, req MessageRequest) (Started, error) {
	var v Started
	return v, c.do(ctx, "POST", "/v1/threads/"+url.PathEscape(string(id))+"/messages", req, &v)
}

// Close closes a thread and its subtree.
func (c *Client) Close(ctx context.Context, id infinity.ThreadID) (Started, error) {
	var v Started
	return v, c.do(ctx, "POST", "/v1/threads/"+url.PathEscape(string(id))+"/close", nil, &v)
}

// UICode asks for a one-time link that opens the web UI.
func (c *Client) UICode(ctx context.Context) (UICode, error) {
	var v UICode
	return v, c.do(ctx, "POST", "/v1/ui/codes", nil, &v)
}

// Compact asks a thread to compact its history now.
func (c *Client) Compact(ctx context.Context, id infinity.ThreadID) (Started, error) {
	var v Started
	return v, c.do(ctx, "POST", "/v1/threads/"+url.PathEscape(string(id))+"/compact", nil, &v)
}

// Answer answers a thread's pending user choice.
func (c *Client) Answer(ctx context.Context, id infinity.ThreadID, req AnswerRequest) (Answered, error) {
	var a Answered
	return a, c.do(ctx, "POST", "/v1/threads/"+url.PathEscape(string(id))+"/answer", req, &a)
}

// Threads lists threads (only roots when roots is set), oldest first.
func (c *Client) Threads(ctx context.Context, roots bool) ([]ThreadView, error) {
	var v []ThreadView
	return v, c.do(ctx, "GET", "/v1/threads?roots="+strconv.FormatBool(roots), nil, &v)
}

// ListThreads lists the threads that match q (GET /v1/threads with roots=,
// q=, status=, order=, offset= and limit=) and says how many match in all
// (X-Total-Count).
func (c *Client) ListThreads(ctx context.Context, q ListQuery) ([]ThreadView, int, error) {
	v := url.Values{}
	if q.Roots {
		v.Set("roots", "true")
	}
	if q.Search != "" {
		v.Set("q", q.Search)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Newest {
		v.Set("order", "newest")
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/threads"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	resp, err := c.send(ctx, "GET", path, nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var out []ThreadView
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, 0, fmt.Errorf("GET %s: bad answer: %w", path, err)
	}
	total, err := strconv.Atoi(resp.Header.Get("X-Total-Count"))
	if err != nil {
		total = len(out)
	}
	return out, total, nil
}

// Thread returns one thread.
func (c *Client) Thread(ctx context.Context, id infinity.ThreadID) (ThreadView, error) {
	var v ThreadView
	return v, c.do(ctx, "GET", "/v1/threads/"+url.PathEscape(string(id)), nil, &v)
}

// Tree returns a thread's subtree.
func (c *Client) Tree(ctx context.Context, id infinity.ThreadID) (Tree, error) {
	var v Tree
	return v, c.do(ctx, "GET", "/v1/threads/"+url.PathEscape(string(id))+"/tree", nil, &v)
}

// Items streams a thread's own items from position from to fn; with follow
// it keeps streaming new items until the thread closes, ctx ends or fn
// returns an error (which Items returns).
func (c *Client) Items(ctx context.Context, id infinity.ThreadID, from int, follow bool, fn func(ItemLine) error) error {
	path := fmt.Sprintf("/v1/threads/%s/items?from=%d&follow=%t", url.PathEscape(string(id)), from, follow)
	resp, err := c.send(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var line ItemLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("items of %s: bad line: %w", id, err)
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("items of %s: %w", id, err)
	}
	return ctx.Err()
}

// Export writes the sessions document to w.
func (c *Client) Export(ctx context.Context, w io.Writer) error {
	resp, err := c.send(ctx, "GET", "/v1/export", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// Import sends a sessions document to the daemon.
func (c *Client) Import(ctx context.Context, r io.Reader) (ImportReport, error) {
	var rep ImportReport
	resp, err := c.send(ctx, "POST", "/v1/import", r)
	if err != nil {
		return rep, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return rep, fmt.Errorf("import: bad answer: %w", err)
	}
	return rep, nil
}

// WaitReady polls the daemon's status until it answers or timeout passes.
func (c *Client) WaitReady(ctx context.Context, timeout time.Duration) (StatusView, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, err := c.Status(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return v, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Views returns the newest view of each type the thread's tools showed.
func (c *Client) Views(ctx context.Context, id infinity.ThreadID) (map[string]json.RawMessage, error) {
	var v map[string]json.RawMessage
	return v, c.do(ctx, "GET", "/v1/threads/"+url.PathEscape(string(id))+"/views", nil, &v)
}

// Budget reads a root's tree budget and what the tree spent.
func (c *Client) Budget(ctx context.Context, root infinity.ThreadID) (actors.TreeBudget, error) {
	var v actors.TreeBudget
	return v, c.do(ctx, "GET", "/v1/threads/"+url.PathEscape(string(root))+"/budget", nil, &v)
}

// RaiseBudget raises a root's tree budget; the threads it stopped go on.
func (c *Client) RaiseBudget(ctx context.Context, root infinity.ThreadID, req BudgetRequest) (Started, error) {
	var v Started
	return v, c.do(ctx, "POST", "/v1/threads/"+url.PathEscape(string(root))+"/budget", req, &v)
}
