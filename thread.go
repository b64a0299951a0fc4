package infinity

import (
	"strconv"
	"time"
)

// ThreadKind says why a thread exists.
type ThreadKind uint8

// Thread kinds.
const (
	// ThreadNormal is a root or a spawn_thread child.
	ThreadNormal ThreadKind = iota
	// ThreadEvent is spawned to handle one subscription event.
	ThreadEvent
	// ThreadCompaction is spawned to summarise its parent's history.
	ThreadCompaction
)

var threadKindNames = [...]string{ThreadNormal: "normal", ThreadEvent: "event", ThreadCompaction: "compaction"}

// String returns the kind's lowercase name ("normal", "event",
// "compaction"), or "ThreadKind(N)" for a value outside the constants.
func (k ThreadKind) String() string {
	if int(k) < len(threadKindNames) {
		return threadKindNames[k]
	}
	return "ThreadKind(" + strconv.Itoa(int(k)) + ")"
}

// ThreadInfo is a thread's place in the tree. A child's history is its
// parent's first SpawnOrder items (recursively) followed by its own items;
// nothing is copied.
type ThreadInfo struct {
	// ID is the thread's id (ValidThreadID).
	ID ThreadID `json:"id"`
	// Parent is the thread that spawned this one; empty for a root.
	Parent ThreadID `json:"parent,omitempty"`
	// Root is the root of the thread's tree: ID itself for a root, the
	// parent's Root for a child (stores check both: ErrInvalid).
	Root ThreadID `json:"root"`
	// SpawnOrder is how many of the parent's own items the child inherits
	// (the parent's own inherited prefix comes along, recursively).
	SpawnOrder int `json:"spawn_order,omitempty"`
	// SpawnCallID is the parent's spawn_thread call id; reports to the parent
	// are tied to it.
	SpawnCallID string `json:"spawn_call_id,omitempty"`
	// Kind says why the thread exists.
	Kind ThreadKind `json:"kind,omitempty"`
	// Agent names the agent configuration the thread runs with; empty
	// means the runtime's default agent. A thread whose agent the runtime
	// does not configure fails its slices (ErrNotFound).
	Agent string `json:"agent,omitempty"`
	// Model, when set, is the thread's own model as "provider/model"
	// (ParseModelRef), overriding its agent's default; children inherit it.
	Model string `json:"model,omitempty"`
	// Closed says the thread was closed (set by the store when a commit
	// lists it in Commit.Close): its history takes no more commits
	// (ErrClosed) and its input is dropped.
	Closed bool `json:"closed,omitempty"`
	// Compacted says the thread has a compaction summary (set by the store).
	Compacted bool `json:"compacted,omitempty"`
	// Created is when the thread was created, on the runtime's clock.
	Created time.Time `json:"created"`
}

// IsRoot reports whether the thread has no parent.
func (t ThreadInfo) IsRoot() bool { return t.Parent == "" }
