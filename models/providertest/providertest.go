// Package providertest holds the checks every model provider's tests run
// against its local wire-format server: collecting a stream, cancelling a
// stalled one, and breaking out of one early. Each provider's tests supply
// the server; the checks are the same.
package providertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

// Result is what a stream yielded.
type Result struct {
	Text   string
	Calls  []infinity.ToolCall
	Done   *infinity.StreamEvent
	Events int
	Err    error
}

// Collect runs one completion and gathers its events, stopping at the
// first error.
func Collect(ctx context.Context, p infinity.ModelProvider, req infinity.CompletionRequest) Result {
	var r Result
	var b strings.Builder
	for ev, err := range p.Stream(ctx, req) {
		if err != nil {
			r.Err = err
			break
		}
		r.Events++
		switch ev.Kind {
		case infinity.StreamText:
			b.WriteString(ev.Text)
		case infinity.StreamToolCall:
			r.Calls = append(r.Calls, *ev.Call)
		case infinity.StreamDone:
			r.Done = &ev
		}
	}
	r.Text = b.String()
	return r
}

// UserText is a request holding one user message.
func UserText(text string) infinity.CompletionRequest {
	return infinity.CompletionRequest{Items: []infinity.Item{{Kind: infinity.KindUser, Text: text}}}
}

// CancelWhileStalled checks that cancelling the context ends a stream that
// stalls promptly, with context.Canceled and not ErrRetryable: the first
// request stalls after one event, the second before the response headers
// (the server decides which by counting requests).
func CancelWhileStalled(t *testing.T, p infinity.ModelProvider) {
	t.Helper()
	for i := 1; i <= 2; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		var got []infinity.StreamEventKind
		var gotErr error
		start := time.Now()
		time.AfterFunc(100*time.Millisecond, cancel)
		for ev, err := range p.Stream(ctx, UserText("x")) {
			if err != nil {
				gotErr = err
				break
			}
			got = append(got, ev.Kind)
		}
		cancel()
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("request %d: returned after %v", i, el)
		}
		if !errors.Is(gotErr, context.Canceled) || errors.Is(gotErr, infinity.ErrRetryable) {
			t.Errorf("request %d: err = %v, want context.Canceled", i, gotErr)
		}
		if i == 1 && len(got) != 1 {
			t.Errorf("events = %v", got)
		}
	}
}

// EarlyBreak checks that leaving a stream after its first event frees it:
// the next completion on the same provider still works and says want.
func EarlyBreak(t *testing.T, p infinity.ModelProvider, want string) {
	t.Helper()
	for range p.Stream(context.Background(), UserText("x")) {
		break
	}
	if r := Collect(context.Background(), p, UserText("x")); r.Err != nil || r.Text != want {
		t.Fatalf("after an early break: %+v", r)
	}
}

// Floor measures what a provider benchmark's HTTP exchange costs without
// any adapter: a 1 KiB JSON POST to a local server that answers with
// payload, read to the end. A provider's own overhead is its benchmark's
// figure less this one.
func Floor(b *testing.B, contentType string, payload []byte) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.Write(payload)
	}))
	defer srv.Close()
	body := []byte(`{"messages":[{"role":"user","content":"` + strings.Repeat("x", 1000) + `"}]}`)
	client := srv.Client()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(payload)) {
			b.Fatalf("read %d of %d bytes: %v", n, len(payload), err)
		}
	}
}
