package infinity

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ConversationStore keeps thread trees, history and each thread's outbox.
// History is append-only; a slice's whole result is written by one Commit.
type ConversationStore interface {
	// CreateThread stores a new root thread. It returns ErrExists when the id
	// is taken and ErrInvalid for a non-root info (children are created by
	// Commit).
	CreateThread(ctx context.Context, info ThreadInfo) error
	// Thread returns a thread's info, or ErrNotFound.
	Thread(ctx context.Context, id ThreadID) (ThreadInfo, error)
	// Lineage returns the thread and its ancestors, root first and the thread
	// itself last. It returns ErrNotFound for an unknown id.
	Lineage(ctx context.Context, id ThreadID) ([]ThreadInfo, error)
	// Children returns a thread's direct children in creation order
	// (ErrNotFound for an unknown id).
	Children(ctx context.Context, id ThreadID) ([]ThreadInfo, error)
	// Items returns the thread's own items with positions in [from, to); a
	// negative to means "to the end". It returns ErrNotFound for an unknown
	// thread. The caller owns the returned slice and what it points to
	// (LoadHistory hands it on, and a slice appends to it).
	Items(ctx context.Context, id ThreadID, from, to int) ([]Item, error)
	// Len returns how many own items the thread has (ErrNotFound).
	Len(ctx context.Context, id ThreadID) (int, error)
	// Commit applies one slice atomically: all of it or none. Its checks, in
	// order: ErrNotFound for an unknown thread, ErrClosed if the thread is
	// closed, ErrConflict if the thread's length is not c.Expected,
	// ErrApplied if any of c.Applied was applied before (or repeats),
	// ErrExists if a thread in c.Create exists (or repeats), ErrInvalid if a
	// created thread's parent is unknown or its root differs from the
	// parent's, ErrNotFound if a thread in c.Close is unknown, ErrInvalid if
	// c.Summary's Position is not c.Expected or its Covers is outside
	// [0, c.Expected]. c.Close is taken literally: the caller lists the whole
	// subtree. A summary sets the thread's ThreadInfo.Compacted. It returns
	// the thread's new length.
	Commit(ctx context.Context, c Commit) (int, error)
	// Applied reports whether an input was applied by a commit of the thread
	// (ErrNotFound for an unknown thread).
	Applied(ctx context.Context, id ThreadID, msg MessageID) (bool, error)
	// Outbox returns the thread's unsent outgoing entries in commit order.
	Outbox(ctx context.Context, id ThreadID) ([]Outgoing, error)
	// Summary returns the thread's newest compaction summary whose
	// Position is below before (nil when there is none), or ErrNotFound
	// for an unknown thread. A thread sees its summaries with before =
	// its length + 1; a child spawned at SpawnOrder sees its parent's with
	// before = SpawnOrder, so a summary committed after the spawn is not
	// part of what the child inherited.
	Summary(ctx context.Context, id ThreadID, before int) (*Summary, error)
	// MarkSent removes outbox entries once they were handed on; unknown
	// entry ids are ignored, an unknown thread is ErrNotFound.
	MarkSent(ctx context.Context, id ThreadID, outgoing ...string) error
}

// Commit is the durable result of one slice.
type Commit struct {
	// Thread is the thread the slice ran for (ErrNotFound if unknown,
	// ErrClosed if closed).
	Thread ThreadID
	// Expected is the thread's own length when the slice loaded it; a
	// different length at commit time is ErrConflict.
	Expected int
	// Items are appended to the thread's own history, in order, from
	// position Expected.
	Items []Item
	// Applied are the input messages this slice consumed; one applied
	// before is ErrApplied, so a message takes effect once.
	Applied []MessageID
	// Outbox holds what must be sent once the commit is durable.
	Outbox []Outgoing
	// Create holds child threads spawned by the slice.
	Create []ThreadInfo
	// Close holds threads closed by the slice (the thread itself and its
	// subtree, for close_thread).
	Close []ThreadID
	// Summary, when set, is a compaction summary of the thread, applied
	// at the start of this slice (its Position is Expected).
	Summary *Summary
}

// Summary is a compaction summary: it stands for the thread's own items
// before Covers and everything the thread inherited. Items are never
// deleted; a summary only changes what later loads of the history return
// (the summary, then the own items from Covers on).
type Summary struct {
	// Position is the thread's own length when the summary was committed.
	// Loads with a bound above it use it: the thread itself, and children
	// spawned after it. Children spawned at or before it keep their exact
	// inherited history.
	Position int `json:"position"`
	// Covers is how many of the thread's own items the summary replaces.
	Covers int `json:"covers"`
	// Text is the summary, as the compaction thread's model wrote it.
	Text string `json:"text"`
	// Calls are summarised calls that may still be answered: asynchronous
	// calls answered with a placeholder and active subscriptions. Keeping
	// them lets late results, events and reports for them be recognised.
	Calls []SummaryCall `json:"calls,omitempty"`
	// Thread is the compaction thread that wrote the summary.
	Thread ThreadID `json:"thread,omitempty"`
	// At is when the thread applied the summary, on the runtime's clock.
	At time.Time `json:"at"`
}

// SummaryCall is a summarised call still waiting for something.
type SummaryCall struct {
	// Call is the call as the history had it.
	Call ToolCall `json:"call"`
	// State is ResultPending for an asynchronous call answered with a
	// placeholder, whose real result is still to come; ResultFinal
	// otherwise.
	State ResultState `json:"state,omitempty"`
	// Subscription says the call is an active subscription.
	Subscription bool `json:"subscription,omitempty"`
}

// CheckSummary checks a commit's summary against the commit (ErrInvalid).
func CheckSummary(c Commit) error {
	s := c.Summary
	switch {
	case s == nil:
		return nil
	case s.Position != c.Expected:
		return fmt.Errorf("commit %s: summary position %d, want the expected length %d: %w", c.Thread, s.Position, c.Expected, ErrInvalid)
	case s.Covers < 0 || s.Covers > c.Expected:
		return fmt.Errorf("commit %s: summary covers %d items of %d: %w", c.Thread, s.Covers, c.Expected, ErrInvalid)
	}
	return nil
}

// Outgoing is an effect of a slice that runs after the commit: a message to a
// thread (possibly in the future) or an asynchronous tool invocation. Both
// carry stable ids, so sending one twice is harmless.
type Outgoing struct {
	// ID is unique within the thread's outbox; an entry whose id is already
	// waiting there is kept once (the first wins).
	ID string `json:"id"`
	// Message is sent to Message.GroupID, not before At.
	Message *InputMessage `json:"message,omitempty"`
	// At is when Message is due; zero means now.
	At time.Time `json:"at,omitzero"`
	// Invoke starts an asynchronous tool call.
	Invoke *Invocation `json:"invoke,omitempty"`
}

// Invocation is an asynchronous tool call to start.
type Invocation struct {
	// Tool is the tool's name, looked up again when the call starts; a
	// tool no longer configured gets the call an error result.
	Tool string `json:"tool"`
	// Call is the call as the model made it (its id is stable).
	Call ToolCall `json:"call"`
}

// Version is a StateStore record version; 0 means "does not exist yet".
type Version uint64

// StateStore keeps small per-thread state: processed message ids (the fast
// dedup path, bounded by expiry) and a versioned state record.
type StateStore interface {
	// Processed reports whether msg was marked processed for the thread and
	// has not expired.
	Processed(ctx context.Context, id ThreadID, msg MessageID) (bool, error)
	// MarkProcessed records msgs as processed until ttl from now (on the
	// store's clock; a repeat replaces the expiry). ttl must be positive
	// (ErrInvalid).
	MarkProcessed(ctx context.Context, id ThreadID, msgs []MessageID, ttl time.Duration) error
	// Load returns the thread's state and its version, or ErrNotFound.
	Load(ctx context.Context, id ThreadID) (State, Version, error)
	// Save stores s if the stored version is still v (0 creates it) and
	// returns the new version; otherwise ErrConflict.
	Save(ctx context.Context, id ThreadID, s State, v Version) (Version, error)
}

// State is a thread's small mutable record.
type State struct {
	// Metadata is the root thread's metadata, overwritten by input messages
	// that carry metadata.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Subscriptions are the tool call ids of active subscriptions.
	Subscriptions []string `json:"subscriptions,omitempty"`
	// Choices are user choices waiting for an answer.
	Choices []PendingChoice `json:"choices,omitempty"`
}

// PendingChoice is a user_choice request waiting for an answer.
type PendingChoice struct {
	// ID is the tool call that asked (Content.ID of the request).
	ID string `json:"id"`
	// Prompt is the question.
	Prompt string `json:"prompt"`
	// Choices are the answers offered, as labels.
	Choices []string `json:"choices"`
	// Default is the index in Choices of the answer taken when the user
	// dismisses the question.
	Default int `json:"default"`
	// ResponseURL is where the answer is posted ({"id","selected"}).
	ResponseURL string `json:"response_url"`
}

// TreeDeleter is a ConversationStore that deletes closed trees: every
// thread of the tree with its items, outbox, applied ids, children and
// summaries. Deleting is final; an id may be used again afterwards.
type TreeDeleter interface {
	// DeleteTree deletes the tree whose root is root and returns the ids
	// of the threads it deleted, root first. It returns ErrNotFound for an
	// unknown id, ErrInvalid for a thread that is not a root and
	// ErrConflict for a root that is not closed (close it first); then
	// nothing is deleted.
	DeleteTree(ctx context.Context, root ThreadID) ([]ThreadID, error)
}

// StateDeleter is a StateStore that forgets threads: their saved state,
// their processed marks and, in a store that keeps an Inbox, their
// waiting messages. Ids it does not know are ignored.
type StateDeleter interface {
	DeleteThreads(ctx context.Context, ids []ThreadID) error
}
