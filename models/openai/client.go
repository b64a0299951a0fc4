package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/backoff"
)

// userAgent names the client to the server.
const userAgent = "infinity-runtime (models/openai)"

// Retry waits: the server's retry-after-ms or retry-after when it sends
// one (a longer wait than maxServerDelay ends the retries), else
// backoffBase·2^retry capped at backoffMax, less up to a quarter of it
// (jitter). These are the SDK's.
const (
	maxServerDelay = 2 * time.Minute
	backoffBase    = 500 * time.Millisecond
	backoffMax     = 8 * time.Second
)

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// errCrossOrigin refuses a redirect away from the base URL's origin,
// which would carry the key elsewhere.
var errCrossOrigin = errors.New("redirected to another origin (scheme, host or port)")

// Error is an error answer from the server: an HTTP status of 400 or more
// with the error object of its body ({"error": {"message", "type",
// "code", "param"}}, or those fields at the top level as vLLM writes
// them), or an error event in a started stream (Stream set). Its Error
// method leaves the server's message out (it may quote the key); the
// provider's errors quote it, clipped, where it is about the request.
type Error struct {
	// StatusCode is the HTTP status; for an error event the status its
	// numeric code names (vLLM, llama.cpp), else zero.
	StatusCode int
	// Stream is set for an error event in a stream that had started.
	Stream bool
	// Type, Code, Param and Message are the error object's fields (a
	// numeric code as its digits).
	Type, Code, Param, Message string
	// Header is the HTTP response's header (nil for an error event).
	Header http.Header

	code json.RawMessage
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Stream {
		b.WriteString("error event")
		if e.StatusCode != 0 {
			b.WriteString(" ")
			b.WriteString(strconv.Itoa(e.StatusCode))
		}
	} else {
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		if t := http.StatusText(e.StatusCode); t != "" {
			b.WriteString(" ")
			b.WriteString(t)
		}
	}
	tag := e.Code
	if tag == "" || tag == strconv.Itoa(e.StatusCode) {
		tag = e.Type
	}
	if tag != "" {
		b.WriteString(" (")
		b.WriteString(clip(tag, 80))
		b.WriteString(")")
	}
	return b.String()
}

// errorFields are the fields of an error object.
type errorFields struct {
	Message json.RawMessage `json:"message"`
	Type    json.RawMessage `json:"type"`
	Code    json.RawMessage `json:"code"`
	Param   json.RawMessage `json:"param"`
	Detail  json.RawMessage `json:"detail"` // FastAPI's {"detail": "..."}
}

// fill sets e's fields from an error value: an object or a string.
func (e *Error) fill(raw json.RawMessage) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		e.Message = s
		return
	}
	var f errorFields
	if json.Unmarshal(raw, &f) == nil {
		e.fields(&f)
	}
}

func (e *Error) fields(f *errorFields) {
	e.Message, e.Type, e.Code, e.Param = jsonText(f.Message), jsonText(f.Type), jsonText(f.Code), jsonText(f.Param)
	if e.Message == "" {
		e.Message = jsonText(f.Detail)
	}
	e.code = f.Code
}

// jsonText is a JSON string's text, a number's or boolean's literal, or
// "" for anything else.
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	case '{', '[', 'n':
		return ""
	}
	return string(raw)
}

// httpError reads an error answer (at most maxErrorBody of it; what
// cannot be read or decoded leaves the fields empty) and closes it.
func httpError(resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode, Header: resp.Header}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	var top struct {
		Error json.RawMessage `json:"error"`
		errorFields
	}
	if json.Unmarshal(body, &top) != nil {
		return e
	}
	if present(top.Error) {
		e.fill(top.Error)
	} else {
		e.fields(&top.errorFields)
	}
	return e
}

// defaultHTTPClient is the client used when Config.HTTPClient is nil: a
// clone of http.DefaultTransport (HTTP/2 over TLS when the server offers
// it) that keeps maxIdle idle connections to the server, with a 10-minute
// response-header timeout.
func defaultHTTPClient(maxIdle int) *http.Client {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.ResponseHeaderTimeout = 10 * time.Minute
		t.MaxIdleConns, t.MaxIdleConnsPerHost = maxIdle, maxIdle
		return &http.Client{Transport: t}
	}
	return &http.Client{Transport: http.DefaultTransport}
}

// guardRedirects returns a copy of hc that refuses redirects away from
// origin, so that the key is sent only there; hc's own redirect policy
// applies after that.
func guardRedirects(hc *http.Client, origin *url.URL) *http.Client {
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, origin) {
			return errCrossOrigin
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

// send posts body to the chat completions endpoint and returns the
// response once its status is below 400. Connection failures and the
// statuses worth retrying (408, 409, 429, 5xx, or what the server's
// x-should-retry says) are retried up to p.retries times, waiting as the
// server asks or backing off. Errors are classified by requestError.
func (p *Provider) send(ctx context.Context, model string, body []byte) (*http.Response, error) {
	for retry := 0; ; retry++ {
		resp, err := p.do(ctx, body)
		if cerr := ctx.Err(); cerr != nil {
			if err == nil {
				_ = resp.Body.Close()
			}
			return nil, cerr
		}
		if err == nil && resp.StatusCode < 400 {
			return resp, nil
		}
		var apiErr *Error
		if err == nil {
			apiErr = httpError(resp)
			err = apiErr
		}
		if retry >= p.retries || !shouldRetry(apiErr, err) {
			return nil, p.requestError(ctx, model, retry, err)
		}
		var h http.Header
		if apiErr != nil {
			h = apiErr.Header
		}
		delay, ok := retryDelay(h, retry)
		if !ok {
			return nil, p.requestError(ctx, model, retry, err)
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// do makes one attempt.
func (p *Provider) do(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = p.header.Clone()
	return p.client.Do(req)
}

// shouldRetry says whether a failed attempt is worth another: a
// connection failure (not a refused redirect), or an error answer whose
// x-should-retry header says so, or (without one) whose status is
// retryable.
func shouldRetry(apiErr *Error, err error) bool {
	if apiErr == nil {
		return !errors.Is(err, errCrossOrigin)
	}
	switch apiErr.Header.Get("X-Should-Retry") {
	case "true":
		return true
	case "false":
		return false
	}
	return retryableStatus(apiErr.StatusCode)
}

// retryDelay is the wait before retry number retry+1; ok is false when
// the server asks for a longer wait than maxServerDelay.
func retryDelay(h http.Header, retry int) (d time.Duration, ok bool) {
	if d, found, tooLong := serverDelay(h); found {
		return d, !tooLong
	}
	d = backoffMax
	if retry < 5 {
		d = min(backoffBase<<retry, backoffMax)
	}
	return d - rand.N(d/4+1), true
}

// serverDelay reads the wait a response asks for: retry-after-ms
// (milliseconds), else retry-after (seconds or an HTTP date). A negative
// or unreadable value is skipped; a date in the past is no wait.
func serverDelay(h http.Header) (d time.Duration, found, tooLong bool) {
	for _, hd := range []struct {
		name string
		unit time.Duration
	}{{"Retry-After-Ms", time.Millisecond}, {"Retry-After", time.Second}} {
		v := h.Get(hd.name)
		if v == "" {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		switch {
		case err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0:
			if f*float64(hd.unit) > float64(maxServerDelay) {
				return 0, true, true
			}
			return time.Duration(f * float64(hd.unit)), true, false
		case errors.Is(err, strconv.ErrRange) && math.IsInf(f, 1):
			return 0, true, true
		case err != nil && hd.unit == time.Second:
			t, perr := http.ParseTime(v)
			if perr != nil {
				continue
			}
			d := time.Until(t)
			if d > maxServerDelay {
				return 0, true, true
			}
			return max(d, 0), true, false
		}
	}
	return 0, false, false
}

// requestError classifies an error from before the stream started, after
// retries retries.
func (p *Provider) requestError(ctx context.Context, model string, retries int, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		if errors.Is(err, errCrossOrigin) {
			return fmt.Errorf("openai: %s redirected the request to another origin, which would get the key: use the address it redirects to as the base URL: %w", p.baseURL, err)
		}
		return fmt.Errorf("openai: cannot reach %s: %w: %w", p.baseURL, err, infinity.ErrRetryable)
	}
	code := apiErr.StatusCode
	if code == http.StatusTooManyRequests {
		return &infinity.RateLimitedError{RetryAfter: infinity.RetryAfter(apiErr.Header, time.Now()),
			Err: fmt.Errorf("openai: %s is throttling (HTTP 429) after %d retries: %w", p.baseURL, retries, err)}
	}
	if retryableStatus(code) {
		return fmt.Errorf("openai: %s still failing after %d retries: %w: %w", p.baseURL, retries, err, infinity.ErrRetryable)
	}
	switch code {
	case http.StatusUnauthorized:
		return fmt.Errorf("openai: %s rejected the credentials: check the API key (Config.APIKey / OPENAI_API_KEY): %w", p.baseURL, err)
	case http.StatusForbidden:
		return fmt.Errorf("openai: %s refused access: check that the API key may use model %q (project, organization, region): %w", p.baseURL, model, err)
	case http.StatusNotFound:
		return fmt.Errorf("openai: not found at %s: check the base URL (it usually ends in /v1) and that the server serves model %q%s: %w", p.baseURL, model, serverMessage(apiErr), err)
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return fmt.Errorf("openai: %s rejected the request for model %q (check the context window, the output limit and the tool schemas)%s: %w: %w", p.baseURL, model, serverMessage(apiErr), err, infinity.ErrInvalid)
	}
	return fmt.Errorf("openai: %s refused the request for model %q%s: %w", p.baseURL, model, serverMessage(apiErr), err)
}

// serverMessage is the server's explanation, clipped, for errors that are
// about the request (not the credentials, whose messages may quote the key).
func serverMessage(e *Error) string {
	msg := strings.TrimSpace(e.Message)
	if msg == "" {
		return ""
	}
	return fmt.Sprintf(": server says %q", clip(msg, 300))
}

// clip cuts s to n runes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusConflict ||
		code == http.StatusTooManyRequests || code >= 500
}

// streamError classifies an error from a started stream: the connection
// broke, the server sent an error event, or a chunk did not decode. All but
// an error event about the request itself are worth retrying.
func streamError(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Stream {
		if code := e.StatusCode; code >= 400 && !retryableStatus(code) {
			return fmt.Errorf("openai: the server ended the stream with error %d%s: %w", code, serverMessage(e), err)
		}
		return fmt.Errorf("openai: the server ended the stream with an error%s: %w: %w", serverMessage(e), err, infinity.ErrRetryable)
	}
	return fmt.Errorf("openai: the stream broke: %w: %w", err, infinity.ErrRetryable)
}
