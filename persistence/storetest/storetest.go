// Package storetest holds the conformance suites that every implementation
// of infinity.ConversationStore and infinity.StateStore must pass, in the
// manner of testing/fstest:
//
//	func TestConversationStore(t *testing.T) {
//		storetest.RunConversation(t, func(t *testing.T) infinity.ConversationStore {
//			return newStore(t)
//		})
//	}
//
// Each case runs as a subtest with a store made for it. Thread ids carry a
// random per-case suffix, so stores backed by shared infrastructure need not
// be emptied between cases. Errors are compared with errors.Is only; times
// are compared with time.Time.Equal and the suites only use times truncated
// to the microsecond, so stores may round to microseconds and return times
// in any location. JSON payloads (json.RawMessage) are compared by meaning,
// so stores may re-encode them (key order, whitespace), and an empty slice
// may come back as nil.
//
// Beyond the interfaces' documentation, the suites pin down:
//
//   - Commit checks, in order: unknown thread (ErrNotFound), closed thread
//     (ErrClosed), c.Expected not the length (ErrConflict), an input already
//     applied to the thread or repeated in c.Applied (ErrApplied), a thread
//     in c.Create that exists or is repeated (ErrExists), a created thread
//     whose parent neither exists nor is created earlier in c.Create, or
//     whose root is not its parent's, or whose id is malformed (ErrInvalid),
//     an id in c.Close that is not a thread (ErrNotFound). Nothing changes
//     when Commit fails. c.Close may name c.Thread itself.
//   - A commit without items is allowed and returns the unchanged length.
//   - Items(id, from, to) clamps to past the end to the end; from past the
//     end, or to before from, gives no items; a negative from is ErrInvalid.
//   - An outgoing entry whose id is already in the thread's unsent outbox
//     (or earlier in the same commit) is dropped: the first one wins.
//   - Every ConversationStore method taking an unknown thread id returns
//     ErrNotFound (MarkSent and Applied included).
//   - StateStore.Processed of a thread that never marked anything reports
//     false without an error; a mark is in force while the store's clock
//     reads before mark time + ttl, and marking again replaces the expiry.
//   - StateStore.Save with v != the stored version (0 when there is no
//     record) is ErrConflict, and returns stored+1 otherwise.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
)

// RunConversation runs the ConversationStore suite. newStore is called once
// per case and must return an empty (or at least independent) store; it may
// register cleanup with t.Cleanup.
func RunConversation(t *testing.T, newStore func(t *testing.T) infinity.ConversationStore) {
	t.Helper()
	for _, c := range conversationCases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			c.fn(t, s)
		})
	}
}

// RunState runs the StateStore suite. newStore is called once per case with
// a *clocktest.Clock that the case advances to test expiry; the store must
// measure expiry on that clock.
func RunState(t *testing.T, newStore func(t *testing.T, clock infinity.Clock) infinity.StateStore) {
	t.Helper()
	runClocked(t, stateCases, newStore)
}

// clockedCase is a case of a suite whose stores run on a test clock.
type clockedCase[S any] struct {
	name string
	fn   func(t *testing.T, s S, clock *clocktest.Clock)
}

// runClocked runs cases, each on a store newStore makes on a fresh clock.
func runClocked[S any](t *testing.T, cases []clockedCase[S], newStore func(t *testing.T, clock infinity.Clock) S) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := clocktest.New(at(0))
			s := newStore(t, clock)
			if any(s) == nil {
				t.Fatal("newStore returned nil")
			}
			c.fn(t, s, clock)
		})
	}
}

// base is the suites' epoch; every time they use is base plus whole
// microseconds.
var base = time.Unix(1_700_000_000, 0).UTC()

// at returns a distinct microsecond-precision time for n.
func at(n int) time.Time {
	return base.Add(time.Duration(n)*time.Second + 123_456*time.Microsecond).Truncate(time.Microsecond)
}

// idsFor returns a function making thread ids unique to one case:
// name + "-" + a random token.
func idsFor() func(name string) infinity.ThreadID {
	tok := string(infinity.NewThreadID())[1:9]
	return func(name string) infinity.ThreadID { return infinity.ThreadID(name + "-" + tok) }
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// noErr fails the test on err.
func noErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// jsonDiff compares two values by the meaning of their JSON encodings and
// returns "" when they agree.
func jsonDiff(got, want any) string {
	g, err1 := normJSON(got)
	w, err2 := normJSON(want)
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("cannot encode: got error %v, want error %v", err1, err2)
	}
	if reflect.DeepEqual(g, w) {
		return ""
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	return fmt.Sprintf("\n got: %s\nwant: %s", gb, wb)
}

func normJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}

// checkInfo compares thread infos field by field (Created with Equal).
func checkInfo(t *testing.T, what string, got, want infinity.ThreadInfo) {
	t.Helper()
	if !got.Created.Equal(want.Created) {
		t.Errorf("%s: Created = %v, want %v", what, got.Created, want.Created)
	}
	got.Created, want.Created = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// checkInfos compares lists of thread infos.
func checkInfos(t *testing.T, what string, got, want []infinity.ThreadInfo) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d threads %v, want %d %v", what, len(got), infoIDs(got), len(want), infoIDs(want))
		return
	}
	for i := range want {
		checkInfo(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func infoIDs(infos []infinity.ThreadInfo) []infinity.ThreadID {
	ids := make([]infinity.ThreadID, len(infos))
	for i, x := range infos {
		ids[i] = x.ID
	}
	return ids
}

// checkItems compares history items (At with Equal, the rest by JSON
// meaning).
func checkItems(t *testing.T, what string, got, want []infinity.Item) {
	t.Helper()
	checkTimed(t, what, got, want, func(x *infinity.Item) (string, *time.Time) { return x.ID, &x.At })
}

func itemIDs(items []infinity.Item) []string {
	ids := make([]string, len(items))
	for i, x := range items {
		ids[i] = x.ID
	}
	return ids
}

// checkOutbox compares outbox entries (At with Equal, the rest by JSON
// meaning).
func checkOutbox(t *testing.T, what string, got, want []infinity.Outgoing) {
	t.Helper()
	checkTimed(t, what, got, want, func(x *infinity.Outgoing) (string, *time.Time) { return x.ID, &x.At })
}

// checkTimed compares two lists element by element: the time field (found
// by key) with Equal, since stores may change its location or monotonic
// reading, and everything else by JSON meaning.
func checkTimed[T any](t *testing.T, what string, got, want []T, key func(*T) (string, *time.Time)) {
	t.Helper()
	ids := func(xs []T) []string {
		out := make([]string, len(xs))
		for i := range xs {
			out[i], _ = key(&xs[i])
		}
		return out
	}
	if len(got) != len(want) {
		t.Errorf("%s: got %d entries %v, want %d %v", what, len(got), ids(got), len(want), ids(want))
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		id, wAt := key(&w)
		_, gAt := key(&g)
		if !gAt.Equal(*wAt) {
			t.Errorf("%s[%d] (%s): At = %v, want %v", what, i, id, *gAt, *wAt)
		}
		*gAt, *wAt = time.Time{}, time.Time{}
		if d := jsonDiff(g, w); d != "" {
			t.Errorf("%s[%d] (%s): %s", what, i, id, d)
		}
	}
}

func outIDs(o []infinity.Outgoing) []string {
	ids := make([]string, len(o))
	for i, x := range o {
		ids[i] = x.ID
	}
	return ids
}

// scramble changes every ASCII lower-case letter of b to upper case: the
// JSON stays valid but means something else.
func scramble(b []byte) {
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
}

// ctxOf returns the test's context.
func ctxOf(t *testing.T) context.Context { return t.Context() }
