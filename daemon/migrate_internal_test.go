package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap"
)

type senderFunc func(context.Context, infinity.InputMessage, time.Time) error

func (f senderFunc) Send(ctx context.Context, m infinity.InputMessage, at time.Time) error {
	return f(ctx, m, at)
}

// The hold is exact: a move does not begin while a send checked before it
// is still in flight (so what was accepted is in the inbox when the tree
// is read), and once it began, input for the tree is refused retryably.
func TestHoldIsAtomicWithTheMoveStart(t *testing.T) {
	d := &Daemon{}
	entered, release := make(chan struct{}), make(chan struct{})
	s := heldSender{d, senderFunc(func(context.Context, infinity.InputMessage, time.Time) error {
		close(entered)
		<-release
		return nil
	})}
	msg := infinity.InputMessage{ID: "m1", GroupID: "r", Content: infinity.TextContent("hi")}
	sent := make(chan error, 1)
	go func() { sent <- s.Send(t.Context(), msg, time.Time{}) }()
	<-entered
	began := make(chan bool, 1)
	go func() { began <- d.moves.begin("r", "out", false) }()
	select {
	case <-began:
		t.Fatal("the move began while a send checked before it was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !<-began {
		t.Fatal("begin refused")
	}
	s.next = senderFunc(func(context.Context, infinity.InputMessage, time.Time) error {
		t.Fatal("input for a moving tree reached the sender")
		return nil
	})
	err := s.Send(t.Context(), msg, time.Time{})
	if !errors.Is(err, ErrMoving) || !errors.Is(err, rap.ErrRetryLater) {
		t.Fatalf("send during the move: %v; want ErrMoving and rap.ErrRetryLater", err)
	}
}
