package rap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/infinity-runtime/infinity"
)

// DefaultMaxBody bounds a callback body when Handler.MaxBody is zero.
const DefaultMaxBody = 1 << 20

// ViewSink receives view updates: the newest content per (group, viewType)
// replaces the previous one. Content is passed through untouched.
type ViewSink interface {
	View(ctx context.Context, group infinity.ThreadID, viewType string, content json.RawMessage) error
}

// Handler receives callbacks at POST {prefix}/rap/callback/{token}. It
// decodes and validates the body (400), checks the token against the
// callback's group_id and call id (401, nothing injected), converts the
// callback and hands it to Sender (500 when that fails, 503 when the
// Sender says ErrRetryLater: the tool retries), and answers 200
// {"ok":true}. A view_update goes to Views, or is
// acknowledged and dropped when Views is nil.
//
// 200 means "handed to the thread's mailbox", not "matched": whether the
// call is still pending, or the subscription still active, is checked by
// the engine when the thread applies the message.
type Handler struct {
	Tokens Tokens
	Sender infinity.InputSender
	Views  ViewSink
	Log    *slog.Logger
	// MaxBody bounds a callback body; 0 means DefaultMaxBody.
	MaxBody int64
	// Reply, when set, writes the handler's error answers (the daemon's
	// API has its own error form); nil writes {"error": message}.
	Reply func(w http.ResponseWriter, status int, message string)
	// Forward, when set, sees every callback whose token checked good
	// before it is delivered: a runtime whose thread lives elsewhere now
	// (it moved to another runtime) answers the tool itself and returns
	// true; false delivers the callback here.
	Forward func(w http.ResponseWriter, r *http.Request, v Verified) bool

	// rejected rate-limits the log lines of callbacks refused before their
	// token was checked good: anyone who reaches the route can send them.
	rejected rejectLog
}

// rejectEvery is how often a refused callback may be logged; the next
// line says how many were not.
const rejectEvery = 10 * time.Second

// rejectLog logs refused callbacks at most once per rejectEvery.
type rejectLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *rejectLog) warn(log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < rejectEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	log.Warn(msg, args...)
}

// ServeHTTP handles one callback.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	i := strings.LastIndex(r.URL.Path, callbackPath)
	token := ""
	if i >= 0 {
		token = r.URL.Path[i+len(callbackPath):]
	}
	if token == "" || strings.Contains(token, "/") {
		h.reply(w, http.StatusNotFound, "not found")
		return
	}
	limit := h.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
			h.reply(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		h.reply(w, http.StatusBadRequest, "unreadable body")
		return
	}
	cb, err := DecodeCallback(body)
	if err != nil {
		h.rejected.warn(log, "rap callback rejected: malformed", "err", err)
		h.reply(w, http.StatusBadRequest, err.Error())
		return
	}
	group := cb.Group()
	call := cb.CallID()
	q := r.URL.Query().Get(callQuery)
	if call == "" { // view_update: the URL names the call
		call = q
	}
	if call == "" || (q != "" && q != call) || !h.Tokens.Verify(group, call, token) {
		h.rejected.warn(log, "rap callback discarded: bad token", "thread", group, "type", cb.Type, "call", call)
		h.reply(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	cb.DeliveryKey = r.Header.Get("Idempotency-Key")
	if h.Forward != nil && h.Forward(w, r, Verified{Callback: cb, Body: body, Call: call}) {
		return
	}
	h.ServeVerified(w, r, cb)
}

// Verified is a callback whose token checked good, as it came: what a
// runtime forwards to the one its thread moved to.
type Verified struct {
	// Callback is the decoded callback, DeliveryKey included.
	Callback Callback
	// Body is the body as received; Call is the call the token was
	// checked for (the body's, or for a view_update the URL's).
	Body []byte
	Call string
}

// ServeVerified delivers a callback that is known good (ServeHTTP checked
// its token, or a runtime it was forwarded from did) and answers as
// ServeHTTP does: 200 {"ok":true}; 404 when no retry can help (an unknown
// thread, a message refused); 503 with Retry-After when the Sender wraps
// ErrRetryLater; 500 for any other failure. Both answers of failure ask
// the tool to retry.
func (h *Handler) ServeVerified(w http.ResponseWriter, r *http.Request, cb Callback) {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	group, call := cb.Group(), cb.CallID()
	if err := h.deliver(r.Context(), cb); err != nil {
		switch {
		case errors.Is(err, ErrRetryLater):
			log.Info("rap callback deferred: the thread cannot take input now", "thread", group, "type", cb.Type, "call", call, "err", err)
			w.Header().Set("Retry-After", RetryAfter)
			h.reply(w, http.StatusServiceUnavailable, "the thread cannot take this callback now; retry later")
		case errors.Is(err, infinity.ErrNotFound) || errors.Is(err, infinity.ErrInvalid):
			// No retry can help: an unknown thread, a message refused.
			log.Warn("rap callback refused", "thread", group, "type", cb.Type, "call", call, "err", err)
			h.reply(w, http.StatusNotFound, "no such thread or call")
		default:
			log.Error("rap callback not delivered", "thread", group, "type", cb.Type, "call", call, "err", err)
			h.reply(w, http.StatusInternalServerError, "internal error")
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// ErrRetryLater, wrapped by a Sender's or ViewSink's error, says that the
// thread cannot take input for a while (it is moving to another runtime,
// say): the callback is answered 503 with Retry-After, and the tool
// retries.
var ErrRetryLater = errors.New("rap: the thread cannot take input now, retry later")

// RetryAfter is the Retry-After, in seconds, of a callback answered 503.
const RetryAfter = "5"

func (h *Handler) deliver(ctx context.Context, cb Callback) error {
	if v := cb.ViewUpdate; v != nil {
		if h.Views == nil {
			return nil
		}
		return h.Views.View(ctx, infinity.ThreadID(v.GroupID), v.ViewType, v.Content)
	}
	msg, err := cb.Message()
	if err != nil {
		return err
	}
	if h.Sender == nil {
		return fmt.Errorf("rap handler has no sender: %w", infinity.ErrInvalid)
	}
	return h.Sender.Send(ctx, msg, time.Time{})
}

func (h *Handler) reply(w http.ResponseWriter, status int, msg string) {
	if h.Reply != nil {
		h.Reply(w, status, msg)
		return
	}
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
