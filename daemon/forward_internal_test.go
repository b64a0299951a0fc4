package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// The forwarding records: durable (0600), found by any thread of a moved
// session, gone when they expire, bounded, and replaced or removed by root.
func TestForwards(t *testing.T) {
	home := t.TempDir()
	now := time.Now()
	f, err := newForwards(home, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.now = func() time.Time { return now }
	rec := forwardRecord{Root: "r1", Threads: []infinity.ThreadID{"r1", "k1"}, To: "http://127.0.0.1:1", Credential: "c1"}
	if err := f.add(rec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(home, migrationsDir, forwardsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file %v, %v; want mode 0600", fi, err)
	}
	// Read again, as at the next start.
	g, err := newForwards(home, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	g.now = f.now
	if r, ok := g.lookup("k1"); !ok || r.Root != "r1" || r.To != rec.To || r.Credential != "c1" || !r.Expires.Equal(now.Add(forwardTTL)) {
		t.Fatalf("lookup after a restart: %+v %v", r, ok)
	}
	if _, ok := g.lookup("other"); ok {
		t.Fatal("a thread that did not move is forwarded")
	}
	// Expired: forgotten, and pruned from the file.
	now = now.Add(forwardTTL)
	if _, ok := g.lookup("r1"); ok {
		t.Fatal("an expired record is used")
	}
	if h, err := newForwards(home, slog.New(slog.DiscardHandler)); err != nil || len(h.recs) != 0 {
		t.Fatalf("after expiry the file holds %+v, %v", h, err)
	}
	// Replaced by root, removed by root.
	for _, to := range []string{"http://a", "http://b"} {
		if err := g.add(forwardRecord{Root: "r2", Threads: []infinity.ThreadID{"r2"}, To: to, Credential: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	if r, ok := g.lookup("r2"); !ok || r.To != "http://b" || len(g.recs) != 1 {
		t.Fatalf("replaced: %+v %v (%d records)", r, ok, len(g.recs))
	}
	if err := g.remove("r2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.lookup("r2"); ok {
		t.Fatal("a removed record is used")
	}
	// Bounded: the oldest go first.
	defer func(n int) { maxForwards = n }(maxForwards)
	maxForwards = 3
	for i := range 5 {
		id := infinity.ThreadID(fmt.Sprintf("s%d", i))
		if err := g.add(forwardRecord{Root: id, Threads: []infinity.ThreadID{id}, To: "http://a", Credential: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := g.lookup(infinity.ThreadID(fmt.Sprintf("s%d", i))); ok != want {
			t.Fatalf("s%d kept: %v, want %v", i, ok, want)
		}
	}
}

// The forwarding credential is scoped to one session, cannot be a
// callback token, and follows the RAP key's rotation.
func TestForwardCredential(t *testing.T) {
	key, old := rap.NewKey(), rap.NewKey()
	toks := rap.Tokens{Key: key, Previous: [][]byte{old}}
	ft := forwardTokens(toks)
	c := ft.Token("r1", forwardCall)
	if !ft.Verify("r1", forwardCall, c) || ft.Verify("r2", forwardCall, c) {
		t.Fatal("the credential is not scoped to its session")
	}
	if c == toks.Token("r1", forwardCall) || toks.Verify("r1", forwardCall, c) {
		t.Fatal("a callback token can serve as the credential")
	}
	prev := forwardTokens(rap.Tokens{Key: old}).Token("r1", forwardCall)
	if !ft.Verify("r1", forwardCall, prev) {
		t.Fatal("a credential of the previous key is refused")
	}
}
