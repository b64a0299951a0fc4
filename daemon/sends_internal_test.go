package daemon

import (
	"fmt"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/disk"
)

// A message id is looked up in the history only when the thread applied
// it, and found however far back it is (pages from the newest items).
func TestAppliedText(t *testing.T) {
	s, err := disk.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, conv, now := t.Context(), s.Conversations(), time.Now()
	const id = infinity.ThreadID("t")
	if err := conv.CreateThread(ctx, infinity.ThreadInfo{ID: id, Root: id, Created: now}); err != nil {
		t.Fatal(err)
	}
	var items []infinity.Item
	var applied []infinity.MessageID
	for i := range 700 { // 1,400 items: the first message is pages back
		m := infinity.MessageID(fmt.Sprintf("m%d", i))
		items = append(items, infinity.Item{ID: string(m), Kind: infinity.KindUser, Text: "text " + string(m), At: now},
			infinity.Item{Kind: infinity.KindAssistant, Text: "ok", At: now})
		applied = append(applied, m)
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: id, Items: items, Applied: applied}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		msg   infinity.MessageID
		text  string
		found bool
	}{{"m0", "text m0", true}, {"m699", "text m699", true}, {"m300", "text m300", true}, {"never", "", false}} {
		text, found, err := appliedText(ctx, conv, id, c.msg)
		if err != nil || found != c.found || text != c.text {
			t.Errorf("%s: %q, %v, %v; want %q, %v", c.msg, text, found, err, c.text, c.found)
		}
	}
	if _, _, err := appliedText(ctx, conv, "nothere", "m0"); err == nil {
		t.Error("an unknown thread: no error")
	}
}
