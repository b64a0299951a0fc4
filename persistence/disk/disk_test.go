package disk

import (
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/storetest"
)

// openTemp opens a store in a fresh directory, closed at the end of the
// test.
func openTemp(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConversationStore(t *testing.T) {
	storetest.RunConversation(t, func(t *testing.T) infinity.ConversationStore {
		return openTemp(t).Conversations()
	})
}

func TestStateStore(t *testing.T) {
	storetest.RunState(t, func(t *testing.T, clock infinity.Clock) infinity.StateStore {
		return openTemp(t, WithClock(clock)).State()
	})
}

func TestInbox(t *testing.T) {
	storetest.RunInbox(t, func(t *testing.T, clock infinity.Clock) storetest.InboxStore {
		return openTemp(t, WithClock(clock)).state
	})
}
