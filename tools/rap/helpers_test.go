package rap

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
)

// sender records what it is sent and, like a thread, applies each id once.
type sender struct {
	mu    sync.Mutex
	all   []infinity.InputMessage // every Send, duplicates included
	seen  map[infinity.MessageID]bool
	fail  error
	failN int // fail this many sends, then succeed
}

func (s *sender) Send(_ context.Context, m infinity.InputMessage, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.failN > 0 {
		s.failN--
		return errors.New("transient")
	}
	if err := m.Validate(); err != nil || m.ID == "" {
		return errors.Join(err, infinity.ErrInvalid)
	}
	s.all = append(s.all, m)
	if s.seen == nil {
		s.seen = map[infinity.MessageID]bool{}
	}
	s.seen[m.ID] = true
	return nil
}

func (s *sender) sent() []infinity.InputMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}

// applied returns the messages a thread would apply: the first of each id.
func (s *sender) applied() []infinity.InputMessage {
	var out []infinity.InputMessage
	seen := map[infinity.MessageID]bool{}
	for _, m := range s.sent() {
		if !seen[m.ID] {
			seen[m.ID] = true
			out = append(out, m)
		}
	}
	return out
}

type view struct {
	group    infinity.ThreadID
	viewType string
	content  string
}

type views struct {
	mu  sync.Mutex
	got []view
}

func (v *views) View(_ context.Context, g infinity.ThreadID, typ string, c json.RawMessage) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.got = append(v.got, view{g, typ, string(c)})
	return nil
}

func (v *views) all() []view {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.got)
}

var quiet = slog.New(slog.DiscardHandler)

var testKey = []byte("test-key-0123456789abcdef")

// runtime is a callback endpoint plus a config pointing at it.
type runtime struct {
	sender *sender
	views  *views
	srv    *httptest.Server
	cfg    Config
}

func newRuntime(t *testing.T, servers ...string) *runtime {
	t.Helper()
	rt := &runtime{sender: &sender{}, views: &views{}}
	h := &Handler{Tokens: Tokens{Key: testKey}, Sender: rt.sender, Views: rt.views, Log: quiet}
	rt.srv = httptest.NewServer(h)
	t.Cleanup(rt.srv.Close)
	rt.cfg = Config{
		Servers:      servers,
		Client:       http.DefaultClient,
		CallbackBase: rt.srv.URL,
		Tokens:       Tokens{Key: testKey},
		Retry:        Retry{Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond},
		Log:          quiet,
	}
	return rt
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hangingServer answers nothing until the test ends (or the request is
// cancelled).
func hangingServer(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}
