package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/internal/httpapi"
)

// userAgent names the client to the server.
const userAgent = "infinity-runtime (models/openai)"

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
		b.WriteString(httpapi.Clip(tag, 80))
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

// errorOf reads an error answer's body into an Error (fields it cannot
// decode stay empty).
func errorOf(ans *httpapi.Answer) *Error {
	e := &Error{StatusCode: ans.StatusCode, Header: ans.Header}
	var top struct {
		Error json.RawMessage `json:"error"`
		errorFields
	}
	if json.Unmarshal(ans.Body, &top) != nil {
		return e
	}
	if present(top.Error) {
		e.fill(top.Error)
	} else {
		e.fields(&top.errorFields)
	}
	return e
}

// send posts body to the chat completions endpoint (retrying as
// httpapi.Client.Post does) and returns the response once its status is
// below 400. Errors are classified by requestError.
func (p *Provider) send(ctx context.Context, model string, body []byte) (*http.Response, error) {
	resp, retries, err := p.api.Post(ctx, body)
	if err != nil {
		return nil, p.requestError(ctx, model, retries, err)
	}
	return resp, nil
}

// requestError classifies an error from before the stream started, after
// retries retries.
func (p *Provider) requestError(ctx context.Context, model string, retries int, err error) error {
	ans, err := httpapi.Failure(ctx, "openai", p.baseURL, err)
	if ans == nil {
		return err
	}
	apiErr := errorOf(ans)
	err = apiErr
	code := apiErr.StatusCode
	if code == http.StatusTooManyRequests {
		return &infinity.RateLimitedError{RetryAfter: infinity.RetryAfter(apiErr.Header, time.Now()),
			Err: fmt.Errorf("openai: %s is throttling (HTTP 429) after %d retries: %w", p.baseURL, retries, err)}
	}
	if httpapi.RetryableStatus(code) {
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
	return fmt.Sprintf(": server says %q", httpapi.Clip(msg, 300))
}

// streamError classifies an error from a started stream: the connection
// broke, the server sent an error event, or a chunk did not decode. All but
// an error event about the request itself are worth retrying.
func streamError(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Stream {
		if code := e.StatusCode; code >= 400 && !httpapi.RetryableStatus(code) {
			return fmt.Errorf("openai: the server ended the stream with error %d%s: %w", code, serverMessage(e), err)
		}
		return fmt.Errorf("openai: the server ended the stream with an error%s: %w: %w", serverMessage(e), err, infinity.ErrRetryable)
	}
	return fmt.Errorf("openai: the stream broke: %w: %w", err, infinity.ErrRetryable)
}
