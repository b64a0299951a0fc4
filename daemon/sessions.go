package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/infinity-runtime/infinity"
)

// SessionsFormat and SessionsVersion identify a sessions document.
const (
	SessionsFormat  = "infinity-sessions"
	SessionsVersion = 1
)

// AgentSource is a registered agent's files, exported so an import is
// self-contained.
type AgentSource struct {
	YAML   string `json:"yaml"`
	Script string `json:"script,omitempty"` // a scripted model's script (JSON text), if any
}

// Sessions is the sessions.json document: the readable export of every
// thread.
//
// It holds what is needed to see and resume a conversation (thread infos,
// own items, state records) and little of the delivery machinery: the
// processed marks of the state store and unsent outbox entries are not
// exported, and of the input ids a thread applied only those its user
// items carry come back (Import marks them applied), so an imported
// thread accepts a re-delivered old tool result or wake-up again, but
// knows the user messages it had.
type Sessions struct {
	Format     string                 `json:"format"`  // always SessionsFormat
	Version    int                    `json:"version"` // SessionsVersion
	ExportedAt time.Time              `json:"exported_at"`
	Agents     map[string]AgentSource `json:"agents,omitempty"` // by agent key (ThreadInfo.Agent)
	Sessions   []Session              `json:"sessions"`         // one per root thread, in creation order
}

// Session is one root thread and its whole tree. Agent, Created and Closed
// repeat the root's info for a reader's convenience and must agree with it.
type Session struct {
	Root    infinity.ThreadID `json:"root"`
	Agent   string            `json:"agent"`
	Created time.Time         `json:"created"`
	Closed  bool              `json:"closed"`
	Threads []SessionThread   `json:"threads"` // parents before children (breadth-first from the root)
	// Pending are the tree's timers and waiting messages, as its inbox
	// held them. A migration (infinity migrate) carries them, so that the
	// tree wakes at the destination when it would have here; Export
	// leaves them out (a copy must not wake twice), and Import does not
	// read them: the daemon sends them after importing (armPending).
	// Absent in documents from before migration.
	Pending []infinity.Queued `json:"pending,omitempty"`
}

// SessionThread is one thread of a session.
type SessionThread struct {
	Info  infinity.ThreadInfo `json:"info"`
	Items []infinity.Item     `json:"items"` // the thread's own items
	// Summaries are the thread's compaction summaries, oldest first.
	Summaries []infinity.Summary `json:"summaries,omitempty"`
	State     *infinity.State    `json:"state,omitempty"` // nil when the thread has no state record
}

// Export writes the sessions of the given roots (in the order given) as
// indented JSON to w, with agents as the document's agent sources and now
// as its export time.
//
// Each session lists the root and then its descendants breadth-first,
// children in creation order. Applied input ids, processed marks and outbox
// entries are not exported (see Sessions). The stores are read thread by
// thread, not in one snapshot: a thread created while Export runs may be
// missing, but every listed child spawned from items that are listed too.
//
// A root that is not a root thread, or one listed twice, is ErrInvalid; an
// unknown root is the store's ErrNotFound.
func Export(ctx context.Context, conv infinity.ConversationStore, state infinity.StateStore, roots []infinity.ThreadID, agents map[string]AgentSource, now time.Time, w io.Writer) error {
	doc := Sessions{
		Format:     SessionsFormat,
		Version:    SessionsVersion,
		ExportedAt: now,
		Agents:     agents,
		Sessions:   make([]Session, 0, len(roots)),
	}
	seen := make(map[infinity.ThreadID]bool, len(roots))
	for _, root := range roots {
		if seen[root] {
			return fmt.Errorf("export sessions: root %q listed twice: %w", root, infinity.ErrInvalid)
		}
		seen[root] = true
		s, err := exportSession(ctx, conv, state, root)
		if err != nil {
			return fmt.Errorf("export sessions: %w", err)
		}
		doc.Sessions = append(doc.Sessions, s)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("export sessions: encode: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("export sessions: write: %w", err)
	}
	return nil
}

// exportSession reads one root's tree, breadth-first.
func exportSession(ctx context.Context, conv infinity.ConversationStore, state infinity.StateStore, root infinity.ThreadID) (Session, error) {
	info, err := conv.Thread(ctx, root)
	if err != nil {
		return Session{}, fmt.Errorf("session %s: %w", root, err)
	}
	if !info.IsRoot() {
		return Session{}, fmt.Errorf("session %s: not a root thread (parent %s): %w", root, info.Parent, infinity.ErrInvalid)
	}
	s := Session{Root: root, Agent: info.Agent, Created: info.Created, Closed: info.Closed}
	queue := []infinity.ThreadInfo{info}
	for len(queue) > 0 {
		t := queue[0]
		queue = queue[1:]
		// Children before items: a child listed here was spawned from items
		// that the later Items call returns (history is append-only), so
		// SpawnOrder never points past the exported items.
		children, err := conv.Children(ctx, t.ID)
		if err != nil {
			return Session{}, fmt.Errorf("session %s: children of %s: %w", root, t.ID, err)
		}
		items, err := conv.Items(ctx, t.ID, 0, -1)
		if err != nil {
			return Session{}, fmt.Errorf("session %s: items of %s: %w", root, t.ID, err)
		}
		if items == nil {
			items = []infinity.Item{} // "items": [] reads better than null
		}
		st := SessionThread{Info: t, Items: items}
		for before := math.MaxInt; ; {
			sum, err := conv.Summary(ctx, t.ID, before)
			if err != nil {
				return Session{}, fmt.Errorf("session %s: summaries of %s: %w", root, t.ID, err)
			}
			if sum == nil {
				break
			}
			st.Summaries = append([]infinity.Summary{*sum}, st.Summaries...)
			before = sum.Position
		}
		rec, _, err := state.Load(ctx, t.ID)
		switch {
		case err == nil:
			st.State = &rec
		case !errors.Is(err, infinity.ErrNotFound):
			return Session{}, fmt.Errorf("session %s: state of %s: %w", root, t.ID, err)
		}
		s.Threads = append(s.Threads, st)
		queue = append(queue, children...)
	}
	return s, nil
}

// ReadSessions decodes and validates a sessions document. It checks the
// format and version; that every session starts with its root thread and
// agrees with the root's info; that every thread id is valid
// (infinity.ValidThreadID) and appears once in the document; that every
// thread's root is its session's root and its parent is listed before it in
// the same session; that a child's SpawnOrder lies within its parent's
// items and that a root has no SpawnOrder; that every item has a known
// kind. Errors wrap infinity.ErrInvalid
// (a read error of r is returned wrapped as it is) and name the session and
// thread at fault.
//
// Embedded JSON values (tool call arguments, display contents, state
// metadata) are compacted, undoing the indentation that Export adds; an
// explicit null among them becomes nil. r is read to its end: callers
// reading untrusted input should bound it (io.LimitReader).
func ReadSessions(r io.Reader) (*Sessions, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	var s Sessions
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read sessions: malformed JSON: %w: %w", infinity.ErrInvalid, err)
	}
	if err := validate(&s); err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	compactSessions(&s)
	return &s, nil
}

// validate checks a sessions document (see ReadSessions). Errors wrap
// infinity.ErrInvalid.
func validate(s *Sessions) error {
	if s.Format != SessionsFormat {
		return fmt.Errorf("format %q, want %q: %w", s.Format, SessionsFormat, infinity.ErrInvalid)
	}
	if s.Version != SessionsVersion {
		return fmt.Errorf("version %d, want %d: %w", s.Version, SessionsVersion, infinity.ErrInvalid)
	}
	for key := range s.Agents {
		if key == "" {
			return fmt.Errorf("agents: empty agent key: %w", infinity.ErrInvalid)
		}
	}
	// Thread ids are unique store-wide, so across the whole document; the
	// map also gives each thread's own item count (for SpawnOrder).
	items := make(map[infinity.ThreadID]int)
	for i := range s.Sessions {
		if err := validateSession(&s.Sessions[i], items); err != nil {
			return fmt.Errorf("sessions[%d] (root %q): %w", i, s.Sessions[i].Root, err)
		}
	}
	return nil
}

func validateSession(s *Session, items map[infinity.ThreadID]int) error {
	if !infinity.ValidThreadID(s.Root) {
		return fmt.Errorf("malformed root id: %w", infinity.ErrInvalid)
	}
	if len(s.Threads) == 0 {
		return fmt.Errorf("no threads (the root must be listed first): %w", infinity.ErrInvalid)
	}
	root := s.Threads[0].Info
	switch {
	case root.ID != s.Root:
		return fmt.Errorf("threads[0] is %q, not the root: %w", root.ID, infinity.ErrInvalid)
	case root.Agent != s.Agent:
		return fmt.Errorf("agent %q, root's agent %q: %w", s.Agent, root.Agent, infinity.ErrInvalid)
	case !root.Created.Equal(s.Created):
		return fmt.Errorf("created %s, root's created %s: %w", s.Created, root.Created, infinity.ErrInvalid)
	case root.Closed != s.Closed:
		return fmt.Errorf("closed %t, root's closed %t: %w", s.Closed, root.Closed, infinity.ErrInvalid)
	}
	inSession := make(map[infinity.ThreadID]bool, len(s.Threads))
	for j := range s.Threads {
		info := s.Threads[j].Info
		if err := validateThread(info, s.Root, j == 0, inSession, items); err != nil {
			return fmt.Errorf("threads[%d] (%q): %w", j, info.ID, err)
		}
		for k, it := range s.Threads[j].Items {
			if it.Kind < infinity.KindUser || it.Kind > infinity.KindToolResult {
				return fmt.Errorf("threads[%d] (%q): items[%d] (%q): no known kind: %w", j, info.ID, k, it.ID, infinity.ErrInvalid)
			}
			if it.Budget != nil {
				if err := it.Budget.Validate(); err != nil {
					return fmt.Errorf("threads[%d] (%q): items[%d] (%q): %w", j, info.ID, k, it.ID, err)
				}
			}
		}
		last := -1
		for k, sum := range s.Threads[j].Summaries {
			if sum.Position <= last || sum.Position > len(s.Threads[j].Items) || sum.Covers < 0 || sum.Covers > sum.Position {
				return fmt.Errorf("threads[%d] (%q): summaries[%d]: position %d, covers %d: want positions rising, up to the %d items, covers at most the position: %w",
					j, info.ID, k, sum.Position, sum.Covers, len(s.Threads[j].Items), infinity.ErrInvalid)
			}
			last = sum.Position
		}
		inSession[info.ID] = true
		items[info.ID] = len(s.Threads[j].Items)
	}
	for k, q := range s.Pending {
		if !inSession[q.Message.GroupID] {
			return fmt.Errorf("pending[%d] (%q): for %q, no thread of the session: %w", k, q.Message.ID, q.Message.GroupID, infinity.ErrInvalid)
		}
		if q.Message.ID == "" {
			return fmt.Errorf("pending[%d]: a message without an id: %w", k, infinity.ErrInvalid)
		}
		if err := q.Message.Validate(); err != nil {
			return fmt.Errorf("pending[%d] (%q): %w", k, q.Message.ID, err)
		}
	}
	return nil
}

func validateThread(info infinity.ThreadInfo, root infinity.ThreadID, isRoot bool, inSession map[infinity.ThreadID]bool, items map[infinity.ThreadID]int) error {
	if !infinity.ValidThreadID(info.ID) {
		return fmt.Errorf("malformed thread id: %w", infinity.ErrInvalid)
	}
	if _, dup := items[info.ID]; dup {
		return fmt.Errorf("thread listed twice: %w", infinity.ErrInvalid)
	}
	if info.Root != root {
		return fmt.Errorf("root %q, session root %q: %w", info.Root, root, infinity.ErrInvalid)
	}
	if info.Kind > infinity.ThreadCompaction {
		return fmt.Errorf("unknown thread kind %d: %w", info.Kind, infinity.ErrInvalid)
	}
	if isRoot {
		if info.Parent != "" {
			return fmt.Errorf("the root has parent %q: %w", info.Parent, infinity.ErrInvalid)
		}
		if info.SpawnOrder != 0 {
			return fmt.Errorf("the root has spawn order %d: %w", info.SpawnOrder, infinity.ErrInvalid)
		}
		return nil
	}
	if info.Parent == "" {
		return fmt.Errorf("a second root in the session (no parent): %w", infinity.ErrInvalid)
	}
	if !inSession[info.Parent] {
		return fmt.Errorf("parent %q not listed before it in the session: %w", info.Parent, infinity.ErrInvalid)
	}
	if n := items[info.Parent]; info.SpawnOrder < 0 || info.SpawnOrder > n {
		return fmt.Errorf("spawn order %d outside the parent's %d items: %w", info.SpawnOrder, n, infinity.ErrInvalid)
	}
	return nil
}

// compactSessions compacts the embedded JSON values of a validated
// document in place (see ReadSessions).
func compactSessions(s *Sessions) {
	for i := range s.Sessions {
		for j := range s.Sessions[i].Threads {
			t := &s.Sessions[i].Threads[j]
			for k := range t.Items {
				it := &t.Items[k]
				if it.Call != nil {
					it.Call.Args = compactRaw(it.Call.Args)
				}
				if it.Result != nil {
					for d := range it.Result.Display {
						it.Result.Display[d].Content = compactRaw(it.Result.Display[d].Content)
					}
				}
			}
			if t.State != nil {
				t.State.Metadata = compactRaw(t.State.Metadata)
			}
		}
	}
}

// compactRaw returns raw without insignificant white space; null is nil.
// raw was decoded by encoding/json, so it is valid JSON.
func compactRaw(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw // unreachable for decoded input; keep it as it is
	}
	if bytes.Equal(buf.Bytes(), []byte("null")) {
		return nil
	}
	return json.RawMessage(buf.Bytes())
}

// ImportReport says what an import did.
type ImportReport struct {
	Imported []infinity.ThreadID `json:"imported"` // roots created
	Skipped  []infinity.ThreadID `json:"skipped"`  // roots that already existed (left untouched)
}

// Import writes the sessions into the stores. A session whose root exists
// already is skipped whole. s is validated first (as ReadSessions does;
// ErrInvalid). Before anything is written, every thread of the sessions to
// import is checked to be new: a non-root thread that exists already is
// ErrExists, a thread with an exported state whose state record exists is
// ErrConflict.
//
// Each session is written as the runtime would have: CreateThread for the
// root (open), then for each thread, parents first, one commit of its own
// items that also creates its direct children (open), then the closed
// threads are closed deepest first, each by a commit of its own, and the
// state records are saved. Threads keep their exported infos (ids, spawn
// order and call, kind, agent, creation time). The messages of the user
// items are marked applied (each message id once per thread), as the
// commits that made the items marked them; no input is marked processed
// and no outbox entry is written (see Sessions).
//
// The stores have no transaction spanning several commits: an error (or a
// crash) partway leaves the session partly imported. A later import of the
// same document completes it: a session whose root exists with the
// document's root info, and whose stored threads hold prefixes of the
// document's items, is resumed where it stopped; one whose root holds
// something else is skipped, as is a complete one. The report lists what
// was done until then.
func Import(ctx context.Context, conv infinity.ConversationStore, state infinity.StateStore, s *Sessions) (ImportReport, error) {
	rep := ImportReport{Imported: []infinity.ThreadID{}, Skipped: []infinity.ThreadID{}}
	if s == nil {
		return rep, fmt.Errorf("import sessions: no document: %w", infinity.ErrInvalid)
	}
	if err := validate(s); err != nil {
		return rep, fmt.Errorf("import sessions: %w", err)
	}
	skip := make([]bool, len(s.Sessions))
	resume := make([]bool, len(s.Sessions))
	for i := range s.Sessions {
		exists, err := checkNew(ctx, conv, state, &s.Sessions[i])
		if err != nil {
			return rep, fmt.Errorf("import sessions: session %s: %w", s.Sessions[i].Root, err)
		}
		if exists {
			if resume[i], err = partlyImported(ctx, conv, state, &s.Sessions[i]); err != nil {
				return rep, fmt.Errorf("import sessions: session %s: %w", s.Sessions[i].Root, err)
			}
			skip[i] = !resume[i]
		}
	}
	for i := range s.Sessions {
		sess := &s.Sessions[i]
		if skip[i] {
			rep.Skipped = append(rep.Skipped, sess.Root)
			continue
		}
		created, err := importSession(ctx, conv, state, sess, resume[i])
		if err != nil {
			if errors.Is(err, errRootExists) {
				// Created by someone else since checkNew: leave it alone.
				rep.Skipped = append(rep.Skipped, sess.Root)
				continue
			}
			if created {
				rep.Imported = append(rep.Imported, sess.Root)
			}
			return rep, fmt.Errorf("import sessions: session %s: %w", sess.Root, err)
		}
		rep.Imported = append(rep.Imported, sess.Root)
	}
	return rep, nil
}

// progress returns how many items a thread's own history holds and the
// position its latest summary covers up to (0 without one).
func progress(ctx context.Context, conv infinity.ConversationStore, id infinity.ThreadID) (stored, covered int, err error) {
	stored, err = conv.Len(ctx, id)
	if errors.Is(err, infinity.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("thread %s: %w", id, err)
	}
	sum, err := conv.Summary(ctx, id, stored+1)
	if err != nil && !errors.Is(err, infinity.ErrNotFound) {
		return 0, 0, fmt.Errorf("thread %s: %w", id, err)
	}
	if sum != nil {
		covered = sum.Position
	}
	return stored, covered, nil
}

func exists(ctx context.Context, conv infinity.ConversationStore, id infinity.ThreadID) bool {
	_, err := conv.Thread(ctx, id)
	return err == nil
}

// errRootExists reports that CreateThread found the root taken.
var errRootExists = errors.New("root exists")

// checkNew reports whether the session's root exists already (the session
// is skipped) and, if not, checks that none of its threads or state
// records exist.
func checkNew(ctx context.Context, conv infinity.ConversationStore, state infinity.StateStore, s *Session) (exists bool, err error) {
	for j, t := range s.Threads {
		_, err := conv.Thread(ctx, t.Info.ID)
		switch {
		case err == nil && j == 0:
			return true, nil
		case err == nil:
			return false, fmt.Errorf("thread %s: %w", t.Info.ID, infinity.ErrExists)
		case !errors.Is(err, infinity.ErrNotFound):
			return false, fmt.Errorf("thread %s: %w", t.Info.ID, err)
		}
		if t.State == nil {
			continue
		}
		_, _, err = state.Load(ctx, t.Info.ID)
		switch {
		case err == nil:
			return false, fmt.Errorf("state of %s exists: %w", t.Info.ID, infinity.ErrConflict)
		case !errors.Is(err, infinity.ErrNotFound):
			return false, fmt.Errorf("state of %s: %w", t.Info.ID, err)
		}
	}
	return false, nil
}

// partlyImported reports whether an existing session root is this
// document's session cut short by an earlier import: the root's info is
// the document's, every stored thread of the session holds a prefix of its
// document items, and something is missing. A foreign or complete session
// is false (skipped).
func partlyImported(ctx context.Context, conv infinity.ConversationStore, state infinity.StateStore, s *Session) (bool, error) {
	root := s.Threads[0].Info
	have, err := conv.Thread(ctx, root.ID)
	if err != nil {
		return false, fmt.Errorf("thread %s: %w", root.ID, err)
	}
	if have.Agent != root.Agent || !have.Created.Equal(root.Created) || !have.IsRoot() {
		return false, nil // another session under the same id
	}
	complete := true
	for _, t := range s.Threads {
		info, err := conv.Thread(ctx, t.Info.ID)
		if errors.Is(err, infinity.ErrNotFound) {
			complete = false
			continue
		}
		if err != nil {
			return false, fmt.Errorf("thread %s: %w", t.Info.ID, err)
		}
		items, err := conv.Items(ctx, t.Info.ID, 0, -1)
		if err != nil {
			return false, fmt.Errorf("thread %s: %w", t.Info.ID, err)
		}
		if len(items) > len(t.Items) {
			return false, nil
		}
		for k := range items {
			if items[k].ID != t.Items[k].ID {
				return false, nil
			}
		}
		if len(items) < len(t.Items) || info.Closed != t.Info.Closed {
			complete = false
		}
		if t.State != nil {
			if _, _, err := state.Load(ctx, t.Info.ID); errors.Is(err, infinity.ErrNotFound) {
				complete = false
			} else if err != nil {
				return false, fmt.Errorf("state of %s: %w", t.Info.ID, err)
			}
		}
	}
	return !complete, nil
}

// importSession writes one validated session whose threads are new, or,
// with resume, the part of it an earlier import did not write (each step
// is skipped when the stores show it done). It reports whether the root
// was created (or, resuming, exists); errRootExists (wrapping the store's
// error) means the root was taken and nothing was written.
func importSession(ctx context.Context, conv infinity.ConversationStore, state infinity.StateStore, s *Session, resume bool) (created bool, err error) {
	children := make(map[infinity.ThreadID][]infinity.ThreadInfo, len(s.Threads))
	depth := make(map[infinity.ThreadID]int, len(s.Threads))
	for _, t := range s.Threads[1:] {
		info := t.Info
		info.Closed, info.Compacted = false, false // the commits below set them
		children[info.Parent] = append(children[info.Parent], info)
		depth[info.ID] = depth[info.Parent] + 1
	}

	root := s.Threads[0].Info
	root.Closed, root.Compacted = false, false
	if err := conv.CreateThread(ctx, root); err != nil {
		switch {
		case errors.Is(err, infinity.ErrExists) && !resume:
			return false, fmt.Errorf("%w: %w", errRootExists, err)
		case !errors.Is(err, infinity.ErrExists):
			return false, fmt.Errorf("create root: %w", err)
		}
	}

	for _, t := range s.Threads {
		kids := children[t.Info.ID]
		if len(t.Items) == 0 && len(kids) == 0 && len(t.Summaries) == 0 {
			continue
		}
		// What an earlier import wrote of this thread: commits that end
		// within it are done.
		stored, covered := 0, 0
		if resume {
			if stored, covered, err = progress(ctx, conv, t.Info.ID); err != nil {
				return true, err
			}
		}
		// The thread applied the messages its user items came from: the
		// commits mark them applied again (each once), so that a message
		// sent again with one of their ids is known (a resend, or other
		// text under a used id) after an import or a migration as before.
		seen := map[infinity.MessageID]bool{}
		commit := func(c infinity.Commit, end int, what string) error {
			c.Applied = appliedBy(c.Items, seen)
			if resume && end <= stored && (len(c.Create) == 0 || exists(ctx, conv, c.Create[0].ID)) {
				return nil
			}
			if _, err := conv.Commit(ctx, c); err != nil {
				return fmt.Errorf("thread %s: %s: %w", t.Info.ID, what, err)
			}
			return nil
		}
		// The items up to each summary, then the summary, as the slices
		// that made them committed them.
		at := 0
		for _, sum := range t.Summaries {
			c := infinity.Commit{Thread: t.Info.ID, Expected: at, Items: t.Items[at:sum.Position], Create: kids}
			if len(c.Items) > 0 || len(kids) > 0 {
				if err := commit(c, sum.Position, "commit items"); err != nil {
					return true, err
				}
				kids, at = nil, sum.Position
			}
			if resume && covered >= sum.Position && stored >= at {
				continue // the summary is there
			}
			if _, err := conv.Commit(ctx, infinity.Commit{Thread: t.Info.ID, Expected: at, Summary: &sum}); err != nil {
				return true, fmt.Errorf("thread %s: commit summary: %w", t.Info.ID, err)
			}
		}
		if rest := t.Items[at:]; len(rest) > 0 || len(kids) > 0 {
			if err := commit(infinity.Commit{Thread: t.Info.ID, Expected: at, Items: rest, Create: kids}, len(t.Items), "commit items"); err != nil {
				return true, err
			}
		}
	}

	var closed []*SessionThread
	for j := range s.Threads {
		if s.Threads[j].Info.Closed {
			closed = append(closed, &s.Threads[j])
		}
	}
	slices.SortStableFunc(closed, func(a, b *SessionThread) int {
		return depth[b.Info.ID] - depth[a.Info.ID]
	})
	for _, t := range closed {
		if resume {
			if info, err := conv.Thread(ctx, t.Info.ID); err == nil && info.Closed {
				continue
			}
		}
		c := infinity.Commit{Thread: t.Info.ID, Expected: len(t.Items), Close: []infinity.ThreadID{t.Info.ID}}
		if _, err := conv.Commit(ctx, c); err != nil {
			return true, fmt.Errorf("thread %s: close: %w", t.Info.ID, err)
		}
	}

	for _, t := range s.Threads {
		if t.State == nil {
			continue
		}
		if resume {
			if _, _, err := state.Load(ctx, t.Info.ID); err == nil {
				continue
			}
		}
		if _, err := state.Save(ctx, t.Info.ID, *t.State, 0); err != nil {
			return true, fmt.Errorf("thread %s: save state: %w", t.Info.ID, err)
		}
	}
	return true, nil
}

// appliedBy returns the message ids of items' user messages that are not
// in seen, and adds them to it.
func appliedBy(items []infinity.Item, seen map[infinity.MessageID]bool) []infinity.MessageID {
	var out []infinity.MessageID
	for i := range items {
		if it := &items[i]; it.Kind == infinity.KindUser && it.ID != "" && !seen[infinity.MessageID(it.ID)] {
			seen[infinity.MessageID(it.ID)] = true
			out = append(out, infinity.MessageID(it.ID))
		}
	}
	return out
}
