// Package httpapi is what the HTTP model providers (models/openai,
// models/anthropic; models/bedrock for the client, Clip and the tool
// cache, as AWS's retry rules differ) share of talking to a provider's
// API: a client that keeps many idle connections, a guard that keeps the
// key from following a redirect to another origin, a POST that retries
// the failures worth retrying, waiting as the server asks (retry-after-ms,
// retry-after) or backing off, a server-sent event reader (SSE), and tool
// encodings kept by content (Tools). Decoding the provider's error bodies
// and events stays with each provider.
package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/backoff"
)

// Retry waits: the server's retry-after-ms or retry-after when it sends
// one (a longer wait than MaxServerDelay ends the retries), else
// BackoffBase·2^retry capped at BackoffMax, less up to a quarter of it
// (jitter). These are the official SDKs' figures.
const (
	MaxServerDelay = 2 * time.Minute
	BackoffBase    = 500 * time.Millisecond
	BackoffMax     = 8 * time.Second
)

// MaxErrorBody bounds how much of an error answer is read.
const MaxErrorBody = 1 << 20

// ErrCrossOrigin refuses a redirect away from the API's origin, which
// would carry the key elsewhere.
var ErrCrossOrigin = errors.New("redirected to another origin (scheme, host or port)")

// Answer is an error answer: an HTTP status of 400 or more, with its
// header and (at most MaxErrorBody of) its body. Its Error method leaves
// the body out: a provider reads it, and quotes what is safe to quote.
type Answer struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

func (a *Answer) Error() string {
	if t := http.StatusText(a.StatusCode); t != "" {
		return "HTTP " + strconv.Itoa(a.StatusCode) + " " + t
	}
	return "HTTP " + strconv.Itoa(a.StatusCode)
}

// ReadAnswer reads an error response into an Answer and closes its body.
func ReadAnswer(resp *http.Response) *Answer {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	_ = resp.Body.Close()
	return &Answer{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}
}

// Client posts request bodies to one endpoint. It is safe for concurrent
// use once built.
type Client struct {
	// HTTP sends the requests; New guards its redirects.
	HTTP *http.Client
	// Endpoint is the URL posted to.
	Endpoint string
	// Header is sent with every request (cloned per request).
	Header http.Header
	// Retries is how many times a failure worth retrying is retried.
	Retries int
}

// New returns a client of endpoint that sends header with every request
// through hc (DefaultHTTPClient(maxIdle) when nil), never following a
// redirect away from origin.
func New(hc *http.Client, maxIdle int, origin *url.URL, endpoint string, header http.Header, retries int) *Client {
	if hc == nil {
		hc = DefaultHTTPClient(maxIdle)
	}
	return &Client{HTTP: GuardRedirects(hc, origin), Endpoint: endpoint, Header: header, Retries: retries}
}

// Post sends body and returns the response once its status is below 400.
// Connection failures (not a refused redirect) and the answers worth
// retrying (the server's x-should-retry, else 408, 409, 429 and 5xx) are
// retried up to c.Retries times. On failure err is ctx.Err() once the
// context ended, an *Answer, or the transport's error (ErrCrossOrigin
// among them); retries says how many retries were made.
func (c *Client) Post(ctx context.Context, body []byte) (resp *http.Response, retries int, err error) {
	for retry := 0; ; retry++ {
		resp, err := c.do(ctx, body)
		if cerr := ctx.Err(); cerr != nil {
			if err == nil {
				_ = resp.Body.Close()
			}
			return nil, retry, cerr
		}
		if err == nil && resp.StatusCode < 400 {
			return resp, retry, nil
		}
		var ans *Answer
		if err == nil {
			ans = ReadAnswer(resp)
			err = ans
		}
		if retry >= c.Retries || !shouldRetry(ans, err) {
			return nil, retry, err
		}
		var h http.Header
		if ans != nil {
			h = ans.Header
		}
		delay, ok := RetryDelay(h, retry)
		if !ok {
			return nil, retry, err
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return nil, retry, err
		}
	}
}

// do makes one attempt.
func (c *Client) do(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = c.Header.Clone()
	return c.HTTP.Do(req)
}

// shouldRetry says whether a failed attempt is worth another: a
// connection failure (not a refused redirect), or an answer whose
// x-should-retry header says so, or (without one) whose status is
// retryable.
func shouldRetry(ans *Answer, err error) bool {
	if ans == nil {
		return !errors.Is(err, ErrCrossOrigin)
	}
	switch ans.Header.Get("X-Should-Retry") {
	case "true":
		return true
	case "false":
		return false
	}
	return RetryableStatus(ans.StatusCode)
}

// Failure sorts an error of Client.Post for provider (its name in errors)
// posting to base: the context's error once it ended; a redirect refused
// (ErrCrossOrigin) or a connection that failed (ErrRetryable), said in
// words; else the server's answer, for the provider to classify by its
// status and body (ans non-nil, err nil).
func Failure(ctx context.Context, provider, base string, err error) (ans *Answer, _ error) {
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if errors.As(err, &ans) {
		return ans, nil
	}
	if errors.Is(err, ErrCrossOrigin) {
		return nil, fmt.Errorf("%s: %s redirected the request to another origin, which would get the key: use the address it redirects to as the base URL: %w", provider, base, err)
	}
	return nil, fmt.Errorf("%s: cannot reach %s: %w: %w", provider, base, err, infinity.ErrRetryable)
}

// RetryableStatus reports the statuses worth another attempt: 408, 409,
// 429 and 5xx (Anthropic's 529 "overloaded" among them).
func RetryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusConflict ||
		code == http.StatusTooManyRequests || code >= 500
}

// RetryDelay is the wait before retry number retry+1; ok is false when
// the server asks for a longer wait than MaxServerDelay.
func RetryDelay(h http.Header, retry int) (d time.Duration, ok bool) {
	if d, found, tooLong := ServerDelay(h); found {
		return d, !tooLong
	}
	d = BackoffMax
	if retry < 5 {
		d = min(BackoffBase<<retry, BackoffMax)
	}
	return d - rand.N(d/4+1), true
}

// ServerDelay reads the wait a response asks for (infinity.ParseRetryAfter);
// tooLong says it is over MaxServerDelay.
func ServerDelay(h http.Header) (d time.Duration, found, tooLong bool) {
	d, found = infinity.ParseRetryAfter(h, time.Now())
	if found && d > MaxServerDelay {
		return 0, true, true
	}
	return d, found, false
}

// DefaultHTTPClient is a clone of http.DefaultTransport (HTTP/2 over TLS
// when the server offers it) that keeps maxIdle idle connections to the
// server, with a 10-minute response-header timeout.
func DefaultHTTPClient(maxIdle int) *http.Client {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.ResponseHeaderTimeout = 10 * time.Minute
		t.MaxIdleConns, t.MaxIdleConnsPerHost = maxIdle, maxIdle
		return &http.Client{Transport: t}
	}
	return &http.Client{Transport: http.DefaultTransport}
}

// GuardRedirects returns a copy of hc that refuses redirects away from
// origin, so that the key is sent only there; hc's own redirect policy
// applies after that.
func GuardRedirects(hc *http.Client, origin *url.URL) *http.Client {
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, origin) {
			return ErrCrossOrigin
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// Endpoint resolves path against base as a directory: .../v1 and
// .../v1/ both give .../v1/path.
func Endpoint(base *url.URL, path string) string {
	dir := *base
	if !strings.HasSuffix(dir.Path, "/") {
		dir.Path += "/"
		if dir.RawPath != "" {
			dir.RawPath += "/"
		}
	}
	return dir.ResolveReference(&url.URL{Path: path}).String()
}

// Clip cuts s to n runes.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// ParseBaseURL checks that raw is an http(s) URL with a host.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return u, nil
}
