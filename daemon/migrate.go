package daemon

// Migration: "infinity migrate ROOT --to URL" moves a session (a root and
// its whole tree) to another daemon, as RAP §8 orders it. The source
// daemon runs the move itself (POST /v1/threads/{id}/migrate), so a CLI
// that goes away part-way changes nothing; the destination takes it
// through the /v1/migrations routes below. See docs/rap.md §2.9.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/backoff"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// MigrationProtocol is the version of the daemon-to-daemon migration
// exchange. A destination refuses another; one without the
// /v1/migrations routes is too old to take a session.
const MigrationProtocol = 1

// migrationsDir, under the home, holds one marker per move in progress:
// out-ROOT.json at the source, in-ROOT.json at the destination.
const migrationsDir = "migrations"

// Error codes of migration.
const (
	// CodeMigrating: the thread's tree is moving to (or arriving from)
	// another daemon; retry later (503, with Retry-After). After the
	// move the thread is not found here.
	CodeMigrating = "migrating"
	// CodeMigrationFailed: the move was called off; the session stays
	// and runs here. The message says why and which tool servers moved
	// their state already (502).
	CodeMigrationFailed = "migration_failed"
)

// ErrMoving: the thread's tree is being moved; its input is refused until
// the move ends (retrying is right: after the move it is found at the
// destination, or here again if the move was called off).
var ErrMoving = errors.New("the thread's session is moving to another daemon")

// How long a migration waits for the tree to come to rest (its running
// slices to end), and for how long it must stay at rest.
var (
	migrateQuietTimeout = 2 * time.Minute
	migrateSettle       = 50 * time.Millisecond
	// migrateDestTimeout bounds each request to the destination daemon.
	migrateDestTimeout = 5 * time.Minute
)

// MigrateRequest is POST /v1/threads/{id}/migrate: where to move the
// session rooted at id.
type MigrateRequest struct {
	// To is the destination daemon's base URL (http://host:port).
	To string `json:"to"`
	// Token is the destination daemon's bearer token (its HOME/token).
	Token string `json:"token"`
}

// MigratedServer is a RAP tool server that moved the session's state.
type MigratedServer struct {
	// Server is the source's server (its base URL, or a local server's
	// name); DestinationURL is the instance it was told to move to.
	Server         string `json:"server"`
	DestinationURL string `json:"destination_url"`
}

// Migrated answers a migration that was done.
type Migrated struct {
	Root infinity.ThreadID `json:"root"`
	To   string            `json:"to"`
	// Threads are the threads moved, the root first.
	Threads []infinity.ThreadID `json:"threads"`
	// Pending is how many timers and waiting messages moved with them.
	Pending int              `json:"pending"`
	Servers []MigratedServer `json:"servers"`
	// Started is false when the destination has the session but did not
	// yet confirm that it runs it (armed its timers): the source tells it
	// again in the background until it does, and at its next start.
	Started bool `json:"started"`
}

// MigrationPrepare is POST /v1/migrations/prepare at the destination:
// take the agents and start and connect the tool servers of the session.
type MigrationPrepare struct {
	Protocol int                    `json:"protocol"`
	Root     infinity.ThreadID      `json:"root"`
	Agents   map[string]AgentSource `json:"agents"`
}

// MigrationPrepared answers MigrationPrepare: the RAP servers the
// destination runs the session with, by agent key.
type MigrationPrepared struct {
	Version string                    `json:"version"`
	Servers map[string][]rap.Instance `json:"servers"`
}

// MigrationImported answers POST /v1/migrations/import.
type MigrationImported struct {
	Threads int `json:"threads"`
	Pending int `json:"pending"`
	// Forward is the credential of POST /v1/migrations/callbacks for this
	// session: the source forwards with it the callbacks of the tool calls
	// that were in flight when the session moved (forward.go).
	Forward string `json:"forward"`
}

// outMarker is a move in progress at the source (HOME/migrations/out-ROOT.json).
type outMarker struct {
	Root  infinity.ThreadID `json:"root"`
	To    string            `json:"to"`
	Token string            `json:"token"`
	// Phase is "moving" until the destination confirmed the import, then
	// "imported".
	Phase string `json:"phase"`
}

// inMarker is a session held at the destination until the source says
// it is gone there (HOME/migrations/in-ROOT.json): its timers and waiting
// messages, armed by the commit.
type inMarker struct {
	Root    infinity.ThreadID `json:"root"`
	Pending []infinity.Queued `json:"pending"`
}

const (
	phaseMoving   = "moving"
	phaseImported = "imported"
)

// moves are the roots being moved out ("out") or held in ("in").
type moves struct {
	// gate makes the hold exact: every path that gives a tree input
	// checks whether it is moving and sends under gate's read lock, and
	// begin marks a root under its write lock. Once begin returned, what
	// was accepted before is in the inbox (so the move sees it), and
	// what comes after is refused.
	gate  sync.RWMutex
	mu    sync.Mutex
	roots map[infinity.ThreadID]string
	n     atomic.Int32
	// recovered are the moves a restart found cut short (recoverMoves),
	// for retryMoves to finish with the destination.
	recovered []outMarker
}

// begin marks root as moving in dir ("in" or "out"). It reports false when
// it is moving already, unless in the same direction and again is set.
func (m *moves) begin(root infinity.ThreadID, dir string, again bool) bool {
	m.gate.Lock()
	defer m.gate.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.roots == nil {
		m.roots = map[infinity.ThreadID]string{}
	}
	if have, ok := m.roots[root]; ok {
		return again && have == dir
	}
	m.roots[root] = dir
	m.n.Add(1)
	return true
}

func (m *moves) end(root infinity.ThreadID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.roots[root]; ok {
		delete(m.roots, root)
		m.n.Add(-1)
	}
}

func (m *moves) dir(root infinity.ThreadID) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.roots[root]
}

// moving reports whether thread id belongs to a tree that is moving.
func (d *Daemon) moving(ctx context.Context, id infinity.ThreadID) bool {
	if d.moves.n.Load() == 0 {
		return false
	}
	if d.moves.dir(id) != "" {
		return true
	}
	info, err := d.store.Conversations().Thread(ctx, id)
	return err == nil && d.moves.dir(info.Root) != ""
}

// holdMoving refuses the API's input to a moving tree (messages, close,
// compact, answers, budgets, deletion; the web UI uses the same routes)
// with 503 CodeMigrating and Retry-After: the move must not lose it, nor
// run it here. The body is read first and the route runs under the
// gate's read lock, so that a request checked before a move began is
// done before the move looks at the tree.
func (d *Daemon) holdMoving(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/v1/threads/")
		id, action, _ := strings.Cut(rest, "/")
		if !ok || r.Method == http.MethodGet || r.Method == http.MethodHead || action == "migrate" {
			next.ServeHTTP(w, r)
			return
		}
		// An answer goes to the tool, not to the thread (the tool's result
		// comes back as a callback, held there): it is checked, but does
		// not hold the gate while the tool is called (whose callback may
		// come before it answers).
		if action != "answer" {
			// A slow client must not hold the gate: its body comes first
			// (the route's own limit still applies to what it reads).
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
			if err != nil {
				writeError(w, apiErr(http.StatusBadRequest, CodeBadRequest, "unreadable body: %v", err))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			d.moves.gate.RLock()
			defer d.moves.gate.RUnlock()
		}
		if d.moving(r.Context(), infinity.ThreadID(id)) {
			w.Header().Set("Retry-After", rap.RetryAfter)
			writeError(w, apiErr(http.StatusServiceUnavailable, CodeMigrating, "thread %s: %v; try again shortly", id, ErrMoving))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// heldSender refuses the RAP callbacks of a moving tree: the callback
// route answers 503 with Retry-After (rap.ErrRetryLater), which tool
// servers retry. It checks and sends under the gate's read lock.
type heldSender struct {
	d    *Daemon
	next infinity.InputSender
}

func (s heldSender) Send(ctx context.Context, msg infinity.InputMessage, at time.Time) error {
	s.d.moves.gate.RLock()
	defer s.d.moves.gate.RUnlock()
	if s.d.moving(ctx, msg.GroupID) {
		return fmt.Errorf("thread %s: %w (%w)", msg.GroupID, ErrMoving, rap.ErrRetryLater)
	}
	return s.next.Send(ctx, msg, at)
}

// postMigrate moves a session to another daemon: POST
// /v1/threads/{id}/migrate. The move runs on the daemon's own context:
// a client that goes away does not stop it half-way.
func (d *Daemon) postMigrate(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	var req MigrateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	to, err := DestinationURL(req.To)
	if err != nil {
		return err
	}
	req.To = to
	if req.Token == "" {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "no token for the destination daemon (its HOME/token)")
	}
	type result struct {
		m   Migrated
		err error
	}
	done := make(chan result, 1)
	d.bg.Go(func() {
		m, err := d.migrate(d.bgCtx, id, req)
		if err != nil && r.Context().Err() != nil {
			d.log.Warn("migration failed after its client went away", "root", id, "to", req.To, "err", err)
		}
		done <- result{m, err}
	})
	select {
	case res := <-done:
		if res.err != nil {
			return res.err
		}
		writeJSON(w, http.StatusOK, res.m)
		return nil
	case <-r.Context().Done():
		return r.Context().Err()
	}
}

// DestinationURL checks a destination daemon's base URL (http or https,
// nothing but a host and port) and returns it as scheme://host; its error
// wraps ErrInvalid.
func DestinationURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("destination %q: want a daemon's base URL, such as http://127.0.0.1:7711: %w", s, infinity.ErrInvalid)
	}
	return u.Scheme + "://" + u.Host, nil
}

// aborted is the error of a move called off after it began: 502
// CodeMigrationFailed, naming the tool servers that moved already.
func aborted(root infinity.ThreadID, to string, moved []MigratedServer, cause error) error {
	msg := fmt.Sprintf("migration of %s to %s called off, the session stays and runs here: %v", root, to, cause)
	if len(moved) > 0 {
		names := make([]string, len(moved))
		for i, s := range moved {
			names[i] = s.Server + " (to " + s.DestinationURL + ")"
		}
		msg += "; these tool servers moved the session's state to the destination already and are told nothing more: " + strings.Join(names, ", ")
	}
	return apiErr(http.StatusBadGateway, CodeMigrationFailed, "%s", msg)
}

// migrate moves the session rooted at root to req.To, in RAP §8's order:
// stop the tree here, start and connect the destination's tool servers,
// /migrate to the servers that need it, move the data, clean up here.
func (d *Daemon) migrate(ctx context.Context, root infinity.ThreadID, req MigrateRequest) (Migrated, error) {
	conv := d.store.Conversations()
	info, err := conv.Thread(ctx, root)
	if err != nil {
		return Migrated{}, err
	}
	if !info.IsRoot() {
		return Migrated{}, apiErr(http.StatusBadRequest, CodeBadRequest, "%s is not a root thread: a session moves whole, migrate its root %s", root, info.Root)
	}
	if !d.moves.begin(root, "out", false) {
		return Migrated{}, apiErr(http.StatusConflict, CodeConflict, "session %s is moving already", root)
	}
	dst := destination(req.To, req.Token)
	var moved []MigratedServer
	prepared := false
	fail := func(cause error) (Migrated, error) {
		if prepared {
			d.discardAt(ctx, dst, root)
		}
		if err := d.forwards.remove(root); err != nil {
			d.log.Error("migration called off: its callbacks' forwarding not removed; they are delivered here all the same", "root", root, "err", err)
		}
		d.release(context.WithoutCancel(ctx), root)
		return Migrated{}, aborted(root, req.To, moved, cause)
	}

	// The destination first: a daemon that answers, with our token. (Each
	// request to it is bounded: see destination.)
	st, err := dst.Status(ctx)
	if err != nil {
		return fail(fmt.Errorf("destination daemon at %s: %w", req.To, destErr(err)))
	}

	// 1. Stop the tree: no slice of it runs until the move ends.
	tree, err := d.quiesce(ctx, root)
	if err != nil {
		return fail(err)
	}
	agents := map[string]bool{}
	for _, id := range tree {
		t, err := conv.Thread(ctx, id)
		if err != nil {
			return fail(fmt.Errorf("thread %s: %w", id, err))
		}
		agents[t.Agent] = true
	}
	sources := d.agents.Sources(agents)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range agents {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if _, ok := sources[k]; !ok && k != "demo" {
			return fail(fmt.Errorf("agent %s is not registered here: its tool servers cannot be told", k))
		}
		if k != "demo" && !d.agents.loaded(k) {
			return fail(fmt.Errorf("agent %s did not load here (see the daemon's log): which of its tool servers need migration cannot be told", k))
		}
	}

	// 2. Start and connect the destination's tool servers.
	var prep MigrationPrepared
	prepared = true
	err = dst.do(ctx, "POST", "/v1/migrations/prepare", MigrationPrepare{Protocol: MigrationProtocol, Root: root, Agents: sources}, &prep)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return fail(fmt.Errorf("the daemon at %s (version %q) cannot take a migration: upgrade it to one with \"infinity migrate\"", req.To, st.Version))
		}
		return fail(fmt.Errorf("destination %s: prepare: %w", req.To, destErr(err)))
	}

	// 3. /migrate to every source server that needs it, each told its own
	// instance at the destination; all must answer 200.
	for _, k := range keys {
		n := d.agents.notifier(k)
		if n == nil {
			continue
		}
		there, urls := prep.Servers[k], map[string]string{}
		done, err := n.MigrateTo(ctx, root, func(src rap.Instance) (string, error) {
			u, err := pairServer(src, there)
			urls[src.Key] = u
			return u, err
		})
		for _, s := range done {
			moved = append(moved, MigratedServer{Server: s, DestinationURL: urls[s]})
		}
		if err != nil {
			return fail(err)
		}
	}

	// 4. Move the data: the tree, its state, its timers and waiting
	// messages. The marker says a move is under way, for a restart.
	if err := d.writeMarker("out", root, outMarker{Root: root, To: req.To, Token: req.Token, Phase: phaseMoving}); err != nil {
		return fail(err)
	}
	fence := func(cause error) (Migrated, error) {
		d.removeMarker("out", root)
		return fail(cause)
	}
	if tree, err = d.quiesce(ctx, root); err != nil { // /migrate took time: still at rest
		return fence(err)
	}
	doc, err := d.sessionDoc(ctx, root, tree, sources)
	if err != nil {
		return fence(err)
	}
	var imp MigrationImported
	err = dst.do(ctx, "POST", "/v1/migrations/import", doc, &imp)
	if err != nil {
		return fence(fmt.Errorf("destination %s: import: %w", req.To, destErr(err)))
	}
	if err := d.unchanged(ctx, root, doc); err != nil {
		return fence(err)
	}
	// The callbacks of calls in flight follow the session: recorded
	// before the tree goes (fail removes the record again).
	if imp.Forward == "" {
		d.log.Warn("migration: the destination gave no credential for forwarded callbacks; the results of tool calls in flight will be lost", "root", root, "to", req.To)
	} else if err := d.forwards.add(forwardRecord{Root: root, Threads: tree, To: req.To, Credential: imp.Forward}); err != nil {
		return fence(err)
	}
	if err := d.writeMarker("out", root, outMarker{Root: root, To: req.To, Token: req.Token, Phase: phaseImported}); err != nil {
		return fence(err)
	}

	// 5. Clean up here, then let the destination run it.
	m := Migrated{Root: root, To: req.To, Threads: tree, Pending: len(doc.Sessions[0].Pending), Servers: moved}
	if m.Servers == nil {
		m.Servers = []MigratedServer{}
	}
	ctx = context.WithoutCancel(ctx) // the session is the destination's now: finish
	for _, k := range keys {
		if n := d.agents.notifier(k); n != nil {
			n.Loader.Forget(root)
		}
	}
	if _, err := d.dropTree(ctx, root); err != nil {
		// What is left of the tree stays held (no input, no timers) and
		// the marker stays; the destination may run it only once it is
		// gone here.
		d.log.Error("migration: the session moved but could not be deleted here; it stays held and the deletion is tried again before the destination runs it", "root", root, "err", err)
		d.bg.Go(func() { d.finishMove(root, req.To, req.Token) })
		return m, nil
	}
	d.moves.end(root)
	// Bounded by the daemon's life: a stop cuts it short, and the marker
	// has the next start commit.
	m.Started = d.commitAt(d.bgCtx, root, req.To, req.Token) == nil
	if !m.Started {
		d.bg.Go(func() { d.retryCommit(root, req.To, req.Token) })
	}
	return m, nil
}

// finishMove deletes, in the background, the tree of a session the
// destination imported, until it is gone (the next start goes on if the
// daemon stops first: the marker says so), then lets the destination run
// the session.
func (d *Daemon) finishMove(root infinity.ThreadID, to, token string) {
	for n := 1; ; n++ {
		if backoff.Sleep(d.bgCtx, backoff.Delay(time.Second, time.Minute, n)) != nil {
			return
		}
		_, err := d.dropTree(d.bgCtx, root)
		if err == nil || errors.Is(err, infinity.ErrNotFound) {
			break
		}
		d.log.Error("migration: the moved session still could not be deleted here; trying again", "root", root, "err", err)
	}
	d.moves.end(root)
	d.retryCommit(root, to, token)
}

// pairServer picks a source server's instance at the destination: the
// one whose manifest has the same name (the same key first when several
// do). The destination runs the session with the same agent file, so
// its servers are the same entries; a local server's instance there is
// the destination's own process.
func pairServer(src rap.Instance, there []rap.Instance) (string, error) {
	var found []rap.Instance
	for _, in := range there {
		if in.Name == src.Name {
			found = append(found, in)
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("the destination runs no tool server named %q (its servers for this agent did not load there?)", src.Name)
	}
	for _, in := range found {
		if in.Key == src.Key {
			return in.URL, nil
		}
	}
	return found[0].URL, nil
}

// destErr turns a client error of the destination into what the user
// reads: not "start one with infinity daemon start".
func destErr(err error) error {
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return fmt.Errorf("the destination refused the token (give its HOME/token): %s", ae.Message)
	case errors.As(err, &ae):
		return fmt.Errorf("HTTP %d %s: %s", ae.Status, ae.Code, ae.Message)
	case errors.Is(err, ErrNoDaemon):
		// The client's hint (start a daemon here) is not the next step
		// for a destination: say what the transport said.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("unreachable: %w", ue.Err)
		}
		return fmt.Errorf("unreachable: %w", err)
	}
	return err
}

// quiesce stops the tree of root: its timers leave the sender (they stay
// in the inbox, to move or to be armed again) and it waits until none of
// its threads runs a slice or has input queued, and stays so for
// migrateSettle. Input from the API and tool servers is refused by then
// (holdMoving, heldSender). It returns the tree, root first.
func (d *Daemon) quiesce(ctx context.Context, root infinity.ThreadID) ([]infinity.ThreadID, error) {
	conv := d.store.Conversations()
	deadline := time.Now().Add(migrateQuietTimeout)
	var since time.Time
	for {
		tree, err := subtree(ctx, conv, root)
		if err != nil {
			return nil, fmt.Errorf("session %s: %w", root, err)
		}
		n := 0
		for _, id := range tree {
			n += d.sender.CancelThread(id)
		}
		busy := slices.ContainsFunc(tree, d.rt.Busy)
		switch {
		case n > 0 || busy:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= migrateSettle:
			return tree, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("session %s did not come to rest within %s (a slice still runs, or one keeps failing and retrying)", root, migrateQuietTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// release ends a move that was called off: the tree takes input again and
// its timers and waiting messages are armed again from the inbox.
func (d *Daemon) release(ctx context.Context, root infinity.ThreadID) {
	d.moves.end(root)
	tree, err := subtree(ctx, d.store.Conversations(), root)
	if err != nil {
		d.log.Error("migration called off: the tree's timers were not armed again; they are at the next start", "root", root, "err", err)
		return
	}
	if err := d.rearm(ctx, tree); err != nil {
		d.log.Error("migration called off: the tree's timers were not armed again; they are at the next start", "root", root, "err", err)
	}
}

// rearm sends the inbox's waiting messages of the threads again (the
// inbox keeps one of each: this arms their timers or delivers them).
func (d *Daemon) rearm(ctx context.Context, tree []infinity.ThreadID) error {
	waiting, err := d.waitingOf(ctx, tree)
	if err != nil {
		return err
	}
	var errs []error
	for _, q := range waiting {
		if err := d.sender.Send(ctx, q.Message, q.At); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitingOf returns the inbox's waiting messages (timers among them) of
// the threads of tree.
func (d *Daemon) waitingOf(ctx context.Context, tree []infinity.ThreadID) ([]infinity.Queued, error) {
	waiting, err := d.store.Inbox().Waiting(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(waiting, func(q infinity.Queued) bool { return !slices.Contains(tree, q.Message.GroupID) }), nil
}

// sessionDoc is the sessions document of one tree at rest, with its
// timers and waiting messages.
func (d *Daemon) sessionDoc(ctx context.Context, root infinity.ThreadID, tree []infinity.ThreadID, agents map[string]AgentSource) (*Sessions, error) {
	s, err := exportSession(ctx, d.store.Conversations(), d.store.State(), root)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", root, err)
	}
	if len(s.Threads) != len(tree) {
		return nil, fmt.Errorf("session %s changed while it was exported: %w", root, infinity.ErrConflict)
	}
	if s.Pending, err = d.waitingOf(ctx, tree); err != nil {
		return nil, fmt.Errorf("session %s: waiting messages: %w", root, err)
	}
	return &Sessions{Format: SessionsFormat, Version: SessionsVersion, ExportedAt: time.Now().UTC(), Agents: agents, Sessions: []Session{s}}, nil
}

// unchanged checks that the tree is still what doc holds: no thread came
// or grew, no message arrived since the export (a fence against input
// that slipped past the hold).
func (d *Daemon) unchanged(ctx context.Context, root infinity.ThreadID, doc *Sessions) error {
	conv := d.store.Conversations()
	s := doc.Sessions[0]
	tree, err := subtree(ctx, conv, root)
	if err != nil {
		return fmt.Errorf("session %s: %w", root, err)
	}
	changed := fmt.Errorf("session %s changed while it moved: %w", root, infinity.ErrConflict)
	if len(tree) != len(s.Threads) {
		return changed
	}
	for _, t := range s.Threads {
		n, err := conv.Len(ctx, t.Info.ID)
		if err != nil || n != len(t.Items) {
			return changed
		}
	}
	waiting, err := d.waitingOf(ctx, tree)
	if err != nil {
		return fmt.Errorf("session %s: waiting messages: %w", root, err)
	}
	if len(waiting) != len(s.Pending) {
		return changed
	}
	return nil
}

// dropTree deletes a tree whatever its state: its open threads are closed
// (deepest first, each by a commit of its own, with no notification: the
// session lives on elsewhere) and the tree is deleted with its state,
// timers and waiting messages, as deleteTree does.
func (d *Daemon) dropTree(ctx context.Context, root infinity.ThreadID) ([]infinity.ThreadID, error) {
	conv := d.store.Conversations()
	tree, err := subtree(ctx, conv, root)
	if err != nil {
		return nil, err
	}
	for i := len(tree) - 1; i >= 0; i-- { // breadth-first: children after parents
		id := tree[i]
		info, err := conv.Thread(ctx, id)
		if err != nil {
			return nil, err
		}
		if info.Closed {
			continue
		}
		n, err := conv.Len(ctx, id)
		if err != nil {
			return nil, err
		}
		if _, err := conv.Commit(ctx, infinity.Commit{Thread: id, Expected: n, Close: []infinity.ThreadID{id}}); err != nil {
			return nil, fmt.Errorf("close %s: %w", id, err)
		}
	}
	return d.deleteTree(ctx, root) // which cancels the timers of the closed tree
}

// loaded reports whether an agent's file loaded (its tools are built).
func (r *registry) loaded(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.servers[key] != nil
}

// Markers.

func (d *Daemon) markerPath(dir string, root infinity.ThreadID) string {
	return filepath.Join(d.opts.Home, migrationsDir, dir+"-"+string(root)+".json")
}

func (d *Daemon) writeMarker(dir string, root infinity.ThreadID, v any) error {
	if err := writeJSONFile(d.markerPath(dir, root), v); err != nil {
		return fmt.Errorf("migration marker: %w", err)
	}
	return nil
}

func (d *Daemon) readMarker(dir string, root infinity.ThreadID, v any) error {
	b, err := os.ReadFile(d.markerPath(dir, root))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("migration marker %s: %w", d.markerPath(dir, root), err)
	}
	return nil
}

func (d *Daemon) removeMarker(dir string, root infinity.ThreadID) {
	if err := os.Remove(d.markerPath(dir, root)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Error("migration marker not removed", "root", root, "err", err)
	}
}

// markers lists the roots with a marker of dir.
func (d *Daemon) markers(dir string) ([]infinity.ThreadID, error) {
	entries, err := os.ReadDir(filepath.Join(d.opts.Home, migrationsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("migration markers: %w", err)
	}
	var out []infinity.ThreadID
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), dir+"-")
		if id, ok2 := strings.CutSuffix(name, ".json"); ok && ok2 && infinity.ValidThreadID(infinity.ThreadID(id)) {
			out = append(out, infinity.ThreadID(id))
		}
	}
	return out, nil
}

// recoverMoves picks up the moves a stop or crash cut short, before the
// inbox is restored (Open calls it). At the source, a move whose import
// the destination confirmed is finished: the tree is deleted here (its
// timers never fire here again) and the destination is told to run it
// (in the background, retryMoves); one that had not got so far is called
// off: the tree runs here, and the destination is asked to drop what it
// may hold. At the destination, held sessions stay held (their input
// refused) until the source's commit or discard.
func (d *Daemon) recoverMoves(ctx context.Context) error {
	outs, err := d.markers("out")
	if err != nil {
		return err
	}
	for _, root := range outs {
		var m outMarker
		if err := d.readMarker("out", root, &m); err != nil {
			return err
		}
		switch m.Phase {
		case phaseImported:
			if _, err := d.dropTree(ctx, root); err != nil && !errors.Is(err, infinity.ErrNotFound) {
				return fmt.Errorf("migration of %s: delete the moved session: %w", root, err)
			}
			d.log.Info("migration: finishing a move cut short: the session is the destination's", "root", root, "to", m.To)
		default:
			d.log.Warn("migration: a move cut short before the destination took the session is called off; it runs here", "root", root, "to", m.To)
			if err := d.forwards.remove(root); err != nil {
				// Harmless: the tree is here, and callbacks go to a thread
				// that is here before any record is read.
				d.log.Error("migration called off: its callbacks' forwarding not removed", "root", root, "err", err)
			}
			d.removeMarker("out", root)
		}
		d.moves.recovered = append(d.moves.recovered, m)
	}
	ins, err := d.markers("in")
	if err != nil {
		return err
	}
	for _, root := range ins {
		d.moves.begin(root, "in", true)
	}
	return nil
}

// retryMoves finishes, in the background, what recoverMoves found: the
// commit of moved sessions, the discard of those called off.
func (d *Daemon) retryMoves() {
	for _, m := range d.moves.recovered {
		if m.Phase == phaseImported {
			d.bg.Go(func() { d.retryCommit(m.Root, m.To, m.Token) })
			continue
		}
		d.discardAt(d.bgCtx, destination(m.To, m.Token), m.Root)
	}
}

// destination is a client of the daemon a session moves to. Every
// request to it is bounded (migrateDestTimeout): a destination that takes
// the connection and never answers must hold neither the tree nor the
// daemon's shutdown.
func destination(to, token string) *Client {
	return &Client{base: to, token: token, hc: &http.Client{Timeout: migrateDestTimeout}}
}

// commitAt tells the destination to run the session (arm its timers); on
// success the source's marker goes.
func (d *Daemon) commitAt(ctx context.Context, root infinity.ThreadID, to, token string) error {
	if err := destination(to, token).do(ctx, "POST", "/v1/migrations/"+url.PathEscape(string(root))+"/commit", nil, nil); err != nil {
		return err
	}
	d.removeMarker("out", root)
	return nil
}

// retryCommit commits at the destination until it answers or the daemon
// stops (then the next start goes on).
func (d *Daemon) retryCommit(root infinity.ThreadID, to, token string) {
	for n := 1; ; n++ {
		err := d.commitAt(d.bgCtx, root, to, token)
		if err == nil {
			d.log.Info("migration: the destination runs the session", "root", root, "to", to)
			return
		}
		d.log.Warn("migration: the destination has the session but did not confirm it runs it; trying again", "root", root, "to", to, "err", err)
		if backoff.Sleep(d.bgCtx, backoff.Delay(time.Second, time.Minute, n)) != nil {
			return
		}
	}
}

// discardAt asks the destination to drop what it holds of a move called
// off; a failure is only logged (what it holds stays held, inert, and a
// later migration of the session replaces it).
func (d *Daemon) discardAt(ctx context.Context, dst *Client, root infinity.ThreadID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := dst.do(ctx, "DELETE", "/v1/migrations/"+url.PathEscape(string(root)), nil, nil); err != nil {
		d.log.Warn("migration called off: the destination was not told to drop what it holds", "root", root, "to", dst.base, "err", err)
	}
}

// The destination's side.

// postMigrationPrepare: POST /v1/migrations/prepare.
func (d *Daemon) postMigrationPrepare(w http.ResponseWriter, r *http.Request) error {
	var req MigrationPrepare
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Protocol != MigrationProtocol {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "migration protocol %d; this daemon (version %q) speaks %d", req.Protocol, d.opts.Version, MigrationProtocol)
	}
	if !infinity.ValidThreadID(req.Root) {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "%q is not a thread id", req.Root)
	}
	ctx := r.Context()
	if !d.moves.begin(req.Root, "in", true) {
		return apiErr(http.StatusConflict, CodeConflict, "session %s is moving out of this daemon", req.Root)
	}
	if _, err := os.Stat(d.markerPath("in", req.Root)); err == nil {
		// What an earlier attempt left: replace it.
		if _, err := d.dropTree(ctx, req.Root); err != nil && !errors.Is(err, infinity.ErrNotFound) {
			return err
		}
		d.removeMarker("in", req.Root)
	} else if _, err := d.store.Conversations().Thread(ctx, req.Root); err == nil {
		d.moves.end(req.Root)
		return apiErr(http.StatusConflict, CodeExists, "this daemon has a thread %s already", req.Root)
	}
	if err := d.registerSources(ctx, "migrated", req.Agents); err != nil {
		d.moves.end(req.Root)
		return err
	}
	out := MigrationPrepared{Version: d.opts.Version, Servers: map[string][]rap.Instance{}}
	for key := range req.Agents {
		n := d.agents.notifier(key)
		if n == nil {
			continue
		}
		ins, err := n.Loader.Instances(ctx, req.Root)
		if err != nil {
			d.log.Warn("migration: tool servers of the session did not all load", "root", req.Root, "agent", key, "err", err)
		}
		out.Servers[key] = ins
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// registerSources registers a document's agents (the bundled demo is
// always there), each of which must hash to its key; from names the
// document in errors ("sessions.json").
func (d *Daemon) registerSources(ctx context.Context, from string, agents map[string]AgentSource) error {
	for key, src := range agents {
		if key == "demo" {
			continue
		}
		info, err := d.agents.Register(ctx, from+" agents."+key, src)
		if err != nil {
			return err
		}
		if info.Key != key {
			return apiErr(http.StatusBadRequest, CodeBadRequest, "%s: agent %q does not match its files (they hash to %q)", from, key, info.Key)
		}
	}
	return nil
}

// postMigrationImport: POST /v1/migrations/import, one session whose
// timers and waiting messages are held (in the marker) until the commit.
func (d *Daemon) postMigrationImport(w http.ResponseWriter, r *http.Request) error {
	s, err := ReadSessions(r.Body)
	if err != nil {
		return err
	}
	if len(s.Sessions) != 1 {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "a migration moves one session, not %d", len(s.Sessions))
	}
	sess := &s.Sessions[0]
	if d.moves.dir(sess.Root) != "in" {
		return apiErr(http.StatusConflict, CodeConflict, "session %s was not prepared for a migration here", sess.Root)
	}
	ctx := r.Context()
	if err := d.registerSources(ctx, "migrated", s.Agents); err != nil {
		return err
	}
	pending := sess.Pending
	if pending == nil {
		pending = []infinity.Queued{}
	}
	if err := d.writeMarker("in", sess.Root, inMarker{Root: sess.Root, Pending: pending}); err != nil {
		return err
	}
	rep, err := Import(ctx, d.store.Conversations(), d.store.State(), s)
	if err != nil {
		return err
	}
	if slices.Contains(rep.Skipped, sess.Root) {
		return apiErr(http.StatusConflict, CodeExists, "this daemon has another session %s", sess.Root)
	}
	writeJSON(w, http.StatusOK, MigrationImported{Threads: len(sess.Threads), Pending: len(pending), Forward: d.forwardCredential(sess.Root)})
	return nil
}

// postMigrationCommit: POST /v1/migrations/{id}/commit: the source deleted
// the session; arm its timers and waiting messages and take its input.
func (d *Daemon) postMigrationCommit(w http.ResponseWriter, r *http.Request) error {
	root, err := threadID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var m inMarker
	if err := d.readMarker("in", root, &m); errors.Is(err, fs.ErrNotExist) {
		if _, err := d.store.Conversations().Thread(ctx, root); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) // committed before
		return nil
	} else if err != nil {
		return err
	}
	for _, q := range m.Pending {
		if err := d.sender.Send(ctx, q.Message, q.At); err != nil {
			return fmt.Errorf("arm %s of %s: %w", q.Message.ID, q.Message.GroupID, err)
		}
	}
	// A session that comes back: its callbacks are delivered here again.
	if err := d.forwards.remove(root); err != nil {
		return err
	}
	d.removeMarker("in", root)
	d.moves.end(root)
	d.hub.poke(root)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

// deleteMigration: DELETE /v1/migrations/{id}: the source called the move
// off; drop what is held of it. A session that is not held is left alone.
func (d *Daemon) deleteMigration(w http.ResponseWriter, r *http.Request) error {
	root, err := threadID(r)
	if err != nil {
		return err
	}
	if d.moves.dir(root) != "in" {
		writeJSON(w, http.StatusOK, map[string]bool{"dropped": false})
		return nil
	}
	if _, err := d.dropTree(r.Context(), root); err != nil && !errors.Is(err, infinity.ErrNotFound) {
		return err
	}
	d.removeMarker("in", root)
	d.moves.end(root)
	writeJSON(w, http.StatusOK, map[string]bool{"dropped": true})
	return nil
}

// armPending sends the timers and waiting messages of the imported
// sessions of a document (a plain import of a document that carries them).
func (d *Daemon) armPending(ctx context.Context, s *Sessions, imported []infinity.ThreadID) error {
	for _, sess := range s.Sessions {
		if !slices.Contains(imported, sess.Root) {
			continue
		}
		for _, q := range sess.Pending {
			if err := d.sender.Send(ctx, q.Message, q.At); err != nil {
				return fmt.Errorf("import: arm %s of %s: %w", q.Message.ID, q.Message.GroupID, err)
			}
		}
	}
	return nil
}

// Migrate asks the daemon to move the session rooted at root to another
// daemon (POST /v1/threads/{id}/migrate).
func (c *Client) Migrate(ctx context.Context, root infinity.ThreadID, req MigrateRequest) (Migrated, error) {
	var v Migrated
	return v, c.do(ctx, "POST", "/v1/threads/"+url.PathEscape(string(root))+"/migrate", req, &v)
}
