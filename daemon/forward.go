package daemon

// Forwarding of RAP callbacks after a migration (migrate.go). A tool call
// in flight when its session moved keeps the source's callback URL; the
// source remembers, for a while, which threads moved and where, and
// forwards their callbacks (verified with its own key, as always) to the
// destination's POST /v1/migrations/callbacks. That route takes a
// credential of its own, scoped to the one session, instead of the
// destination's bearer token: the source keeps nothing that opens the
// rest of the destination's API. See docs/rap.md §2.9.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// MigrationCallbacksPath is the destination's route for the callbacks a
// source forwards. It is authenticated by the migration's forwarding
// credential (MigrationImported.Forward), not the bearer token.
const MigrationCallbacksPath = "/v1/migrations/callbacks"

// forwardsFile, under HOME/migrations, holds the sessions that moved out
// and where their callbacks go (0600: it holds their credentials).
const forwardsFile = "forwards.json"

// Bounds of the forwarding records.
var (
	// forwardTTL is how long a moved session's callbacks are forwarded;
	// after it they get 404, as for any thread not known here.
	forwardTTL = 30 * 24 * time.Hour
	// maxForwards and maxForwardThreads bound the records: past them the
	// oldest moves are forgotten first.
	maxForwards       = 1000
	maxForwardThreads = 100_000
	// maxForwardHops bounds a callback forwarded along a session that
	// moved several times (A to B to C).
	maxForwardHops = 8
	// forwardTimeout bounds one forwarding to the destination.
	forwardTimeout = 30 * time.Second
)

// forwardCall is the call id the forwarding credential is minted for,
// under a key derived from the RAP key for that purpose alone (so no
// callback token can ever be one).
const forwardCall = "migration-callbacks"

// MigrationCallback is POST /v1/migrations/callbacks: a RAP callback for
// a thread of Root that came to the source after the session moved. The
// source checked the callback's token; Callback is its body as it came.
type MigrationCallback struct {
	Root   infinity.ThreadID `json:"root"`
	Thread infinity.ThreadID `json:"thread"`
	// Call is the call the callback token was for (a view_update's URL
	// names it); IdempotencyKey the tool's Idempotency-Key header.
	Call           string          `json:"call"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Callback       json.RawMessage `json:"callback"`
	// Hops counts the daemons it was forwarded through.
	Hops int `json:"hops"`
}

// forwardRecord is one session that moved out: its threads, the
// destination and the credential its callbacks route takes.
type forwardRecord struct {
	Root       infinity.ThreadID   `json:"root"`
	Threads    []infinity.ThreadID `json:"threads"`
	To         string              `json:"to"`
	Credential string              `json:"credential"`
	Moved      time.Time           `json:"moved"`
	Expires    time.Time           `json:"expires"`
}

type forwardsDoc struct {
	Version  int             `json:"version"`
	Forwards []forwardRecord `json:"forwards"`
}

// forwards are the records of HOME/migrations/forwards.json, oldest
// first, with an index by thread.
type forwards struct {
	mu       sync.Mutex
	path     string
	recs     []forwardRecord
	byThread map[infinity.ThreadID]int
	now      func() time.Time
	log      *slog.Logger
}

func newForwards(home string, log *slog.Logger) (*forwards, error) {
	f := &forwards{path: filepath.Join(home, migrationsDir, forwardsFile), now: time.Now, log: log}
	b, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("migration forwards: %w", err)
	default:
		var doc forwardsDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("migration forwards %s: %w", f.path, err)
		}
		f.recs = doc.Forwards
	}
	f.prune()
	return f, nil
}

// prune drops the expired records and the oldest past the bounds, and
// indexes the rest (f.mu held, or before f is shared).
func (f *forwards) prune() bool {
	now, n := f.now(), len(f.recs)
	f.recs = slices.DeleteFunc(f.recs, func(r forwardRecord) bool { return !now.Before(r.Expires) })
	threads := 0
	for _, r := range f.recs {
		threads += len(r.Threads)
	}
	for len(f.recs) > maxForwards || (threads > maxForwardThreads && len(f.recs) > 1) {
		threads -= len(f.recs[0].Threads)
		f.recs = f.recs[1:]
	}
	f.byThread = map[infinity.ThreadID]int{}
	for i, r := range f.recs {
		for _, id := range r.Threads {
			f.byThread[id] = i
		}
	}
	return len(f.recs) != n
}

// save writes the records (f.mu held).
func (f *forwards) save() error {
	if err := writeJSONFile(f.path, forwardsDoc{Version: 1, Forwards: f.recs}); err != nil {
		return fmt.Errorf("migration forwards: %w", err)
	}
	return nil
}

// add records a session that moved out (replacing an earlier record of
// it), durably.
func (f *forwards) add(r forwardRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	r.Moved, r.Expires = now, now.Add(forwardTTL)
	f.recs = slices.DeleteFunc(f.recs, func(o forwardRecord) bool { return o.Root == r.Root })
	f.recs = append(f.recs, r)
	f.prune()
	return f.save()
}

// remove forgets the session rooted at root (its move was called off, or
// it came back), durably.
func (f *forwards) remove(root infinity.ThreadID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.recs)
	f.recs = slices.DeleteFunc(f.recs, func(o forwardRecord) bool { return o.Root == root })
	if len(f.recs) == n {
		return nil
	}
	f.prune()
	return f.save()
}

// lookup finds where the callbacks of thread go, if it moved out and the
// record has not expired.
func (f *forwards) lookup(thread infinity.ThreadID) (forwardRecord, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.byThread[thread]
	if !ok {
		return forwardRecord{}, false
	}
	if r := f.recs[i]; f.now().Before(r.Expires) {
		return r, true
	}
	if f.prune() {
		if err := f.save(); err != nil { // expired records are skipped when read anyway
			f.log.Warn("migration forwards: expired records not removed from the file", "err", err)
		}
	}
	return forwardRecord{}, false
}

// forwardTokens are the RAP tokens under keys derived from the daemon's
// RAP keys for forwarding credentials alone.
func forwardTokens(t rap.Tokens) rap.Tokens {
	derive := func(k []byte) []byte {
		if len(k) == 0 {
			return nil
		}
		m := hmac.New(sha256.New, k)
		m.Write([]byte("infinity: migration callbacks credential, v1"))
		return m.Sum(nil)
	}
	out := rap.Tokens{Key: derive(t.Key)}
	for _, k := range t.Previous {
		out.Previous = append(out.Previous, derive(k))
	}
	return out
}

// forwardCredential is the credential of the callbacks route for the
// session rooted at root, as this daemon (the destination) checks it.
func (d *Daemon) forwardCredential(root infinity.ThreadID) string {
	return forwardTokens(d.rapTokens).Token(root, forwardCall)
}

// forwardCallback is the RAP callback handler's Forward: a callback for a
// thread whose tree is moving is refused for now (503, Retry-After); one
// for a thread that moved out is forwarded to where it went; anything
// else is delivered here.
func (d *Daemon) forwardCallback(w http.ResponseWriter, r *http.Request, v rap.Verified) bool {
	group := v.Callback.Group()
	if d.moving(r.Context(), group) {
		w.Header().Set("Retry-After", rap.RetryAfter)
		writeError(w, apiErr(http.StatusServiceUnavailable, CodeMigrating, "thread %s: %v; try again shortly", group, ErrMoving))
		return true
	}
	rec, ok := d.forwards.lookup(group)
	if !ok {
		return false
	}
	if _, err := d.store.Conversations().Thread(r.Context(), group); err == nil {
		return false // here again
	}
	d.relayCallback(w, r, rec, MigrationCallback{Root: rec.Root, Thread: group, Call: v.Call,
		IdempotencyKey: v.Callback.DeliveryKey, Callback: v.Body})
	return true
}

// relayCallback posts a callback to the daemon the session moved to and
// answers the tool with that daemon's answer, or with 503 and
// Retry-After when it cannot be reached (the tool retries).
func (d *Daemon) relayCallback(w http.ResponseWriter, r *http.Request, rec forwardRecord, mc MigrationCallback) {
	unreachable := func(err error) {
		d.log.Warn("rap callback for a session that moved: the destination cannot be reached; the tool is asked to retry",
			"thread", mc.Thread, "root", rec.Root, "to", rec.To, "err", err)
		w.Header().Set("Retry-After", rap.RetryAfter)
		writeError(w, apiErr(http.StatusServiceUnavailable, CodeUnavailable, "thread %s moved to another daemon, which cannot be reached now; retry later", mc.Thread))
	}
	body, err := json.Marshal(mc)
	if err != nil {
		unreachable(err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rec.To+MigrationCallbacksPath, bytes.NewReader(body))
	if err != nil {
		unreachable(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+rec.Credential)
	resp, err := d.fwdClient.Do(req)
	if err != nil {
		unreachable(err)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		unreachable(err)
		return
	}
	if resp.StatusCode >= 300 {
		d.log.Warn("rap callback for a session that moved: the destination did not take it", "thread", mc.Thread, "root", rec.Root, "to", rec.To, "status", resp.StatusCode)
	}
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// postMigrationCallback: POST /v1/migrations/callbacks, a callback that
// the source of a session forwards. It is delivered as the callback route
// delivers (the same checks of the body, the same deduplication), or
// forwarded on if the session moved on from here.
func (d *Daemon) postMigrationCallback(w http.ResponseWriter, r *http.Request) error {
	cred, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var mc MigrationCallback
	if err := decode(r, &mc); err != nil {
		return err
	}
	if !infinity.ValidThreadID(mc.Root) || cred == "" || !forwardTokens(d.rapTokens).Verify(mc.Root, forwardCall, cred) {
		return apiErr(http.StatusUnauthorized, CodeUnauthorized, "missing or wrong credential for the callbacks of session %q", mc.Root)
	}
	cb, err := rap.DecodeCallback(mc.Callback)
	if err != nil {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	if cb.Group() != mc.Thread || (cb.CallID() != "" && cb.CallID() != mc.Call) {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "the callback is for thread %s and call %q, not %s and %q", cb.Group(), cb.CallID(), mc.Thread, mc.Call)
	}
	cb.DeliveryKey = mc.IdempotencyKey
	info, err := d.store.Conversations().Thread(r.Context(), mc.Thread)
	switch {
	case err == nil && info.Root == mc.Root:
		d.callbacks.ServeVerified(w, r, cb)
		return nil
	case err == nil:
		return apiErr(http.StatusNotFound, CodeNotFound, "thread %s is not of session %s", mc.Thread, mc.Root)
	case !errors.Is(err, infinity.ErrNotFound):
		return err
	}
	// Not here: the session may have moved on.
	rec, ok := d.forwards.lookup(mc.Thread)
	if !ok || rec.Root != mc.Root {
		return apiErr(http.StatusNotFound, CodeNotFound, "no thread %s here", mc.Thread)
	}
	if mc.Hops++; mc.Hops > maxForwardHops {
		return apiErr(http.StatusNotFound, CodeNotFound, "the callback for %s was forwarded %d times: dropped", mc.Thread, maxForwardHops)
	}
	d.relayCallback(w, r, rec, mc)
	return nil
}

// newForwardClient is the client callbacks are forwarded with: it follows
// no redirect (the credential goes to the destination alone).
func newForwardClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
