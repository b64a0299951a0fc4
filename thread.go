package infinity

import "time"

// ThreadKind says why a thread exists.
type ThreadKind uint8

// Thread kinds.
const (
	ThreadNormal     ThreadKind = iota // a root or a spawn_thread child
	ThreadEvent                        // spawned to process one subscription event
	ThreadCompaction                   // spawned to summarise its parent
)

// ThreadInfo is a thread's place in the tree. A child's history is its
// parent's first SpawnOrder items (recursively) followed by its own items;
// nothing is copied.
type ThreadInfo struct {
	ID     ThreadID `json:"id"`
	Parent ThreadID `json:"parent,omitempty"` // empty for a root
	Root   ThreadID `json:"root"`
	// SpawnOrder is how many of the parent's own items the child inherits
	// (the parent's own inherited prefix comes along, recursively).
	SpawnOrder int `json:"spawn_order,omitempty"`
	// SpawnCallID is the parent's spawn_thread call id; reports to the parent
	// are tied to it.
	SpawnCallID string     `json:"spawn_call_id,omitempty"`
	Kind        ThreadKind `json:"kind,omitempty"`
	// Agent names the agent configuration the thread runs with.
	Agent string `json:"agent,omitempty"`
	// Model, when set, is the thread's own model as "provider/model"
	// (ParseModelRef), overriding its agent's default; children inherit it.
	Model  string `json:"model,omitempty"`
	Closed bool   `json:"closed,omitempty"`
	// Compacted says the thread has a compaction summary (set by the store).
	Compacted bool      `json:"compacted,omitempty"`
	Created   time.Time `json:"created"`
}

// IsRoot reports whether the thread has no parent.
func (t ThreadInfo) IsRoot() bool { return t.Parent == "" }
