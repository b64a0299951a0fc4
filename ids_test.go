package infinity_test

import (
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

func TestValidThreadID(t *testing.T) {
	valid := []infinity.ThreadID{
		"t1",
		"a",
		"A",
		"0",
		"thread-1",
		"thread_1",
		"thread.1",
		"MiXeD-Case_with.dots-09",
		infinity.ThreadID(strings.Repeat("z", 128)),
		infinity.NewThreadID(),
	}
	for _, id := range valid {
		if !infinity.ValidThreadID(id) {
			t.Errorf("ValidThreadID(%q) = false, want true", id)
		}
	}
	invalid := []infinity.ThreadID{
		"",
		".", // a path would rewrite these two
		"..",
		" ",
		"t 1",
		" t1",
		"t1 ",
		"t1\n",
		"t\t1",
		"t/1",
		"t:1",
		"t#1",
		"t+1",
		"t@1",
		"t\x00",
		"tö",
		"t\u00a0",
		"日本",
		infinity.ThreadID(strings.Repeat("z", 129)),
		infinity.ThreadID(strings.Repeat("z", 1000)),
	}
	for _, id := range invalid {
		if infinity.ValidThreadID(id) {
			t.Errorf("ValidThreadID(%q) = true, want false", id)
		}
	}
}

// isIDChar reports whether r is in the alphabet of generated ids.
func isIDChar(r rune) bool { return r >= 'a' && r <= 'z' || r >= '2' && r <= '7' }

func TestNewThreadID(t *testing.T) {
	const n = 10000
	seen := make(map[infinity.ThreadID]bool, n)
	for range n {
		id := infinity.NewThreadID()
		if !infinity.ValidThreadID(id) {
			t.Fatalf("NewThreadID() = %q, not a valid thread id", id)
		}
		if len(id) != 21 || id[0] != 't' {
			t.Fatalf("NewThreadID() = %q, want \"t\" + 20 characters", id)
		}
		if i := strings.IndexFunc(string(id[1:]), func(r rune) bool { return !isIDChar(r) }); i >= 0 {
			t.Fatalf("NewThreadID() = %q, has a character outside [a-z2-7]", id)
		}
		if seen[id] {
			t.Fatalf("NewThreadID() repeated %q within %d ids", id, len(seen))
		}
		seen[id] = true
	}
}

func TestNewMessageID(t *testing.T) {
	const n = 10000
	seen := make(map[infinity.MessageID]bool, n)
	for range n {
		id := infinity.NewMessageID()
		if len(id) != 21 || id[0] != 'm' {
			t.Fatalf("NewMessageID() = %q, want \"m\" + 20 characters", id)
		}
		if i := strings.IndexFunc(string(id[1:]), func(r rune) bool { return !isIDChar(r) }); i >= 0 {
			t.Fatalf("NewMessageID() = %q, has a character outside [a-z2-7]", id)
		}
		// Message ids double as thread ids in places; they are in the
		// same alphabet.
		if !infinity.ValidThreadID(infinity.ThreadID(id)) {
			t.Fatalf("NewMessageID() = %q, not usable as a thread id", id)
		}
		if seen[id] {
			t.Fatalf("NewMessageID() repeated %q within %d ids", id, len(seen))
		}
		seen[id] = true
	}
}

func TestDeriveID(t *testing.T) {
	a := infinity.DeriveID("t", "thread-1", "call_1")
	if b := infinity.DeriveID("t", "thread-1", "call_1"); a != b {
		t.Fatalf("DeriveID is not deterministic: %q then %q", a, b)
	}
	if len(a) != 21 || !strings.HasPrefix(a, "t") {
		t.Fatalf("DeriveID(\"t\", ...) = %q, want \"t\" + 20 characters", a)
	}
	if !infinity.ValidThreadID(infinity.ThreadID(a)) {
		t.Fatalf("DeriveID(\"t\", ...) = %q, not a valid thread id", a)
	}
	if i := strings.IndexFunc(a[1:], func(r rune) bool { return !isIDChar(r) }); i >= 0 {
		t.Fatalf("DeriveID = %q, has a character outside [a-z2-7]", a)
	}
	// The prefix is prepended verbatim and does not change the hash.
	if got := infinity.DeriveID("call-", "thread-1", "call_1"); got != "call-"+a[1:] {
		t.Fatalf("DeriveID with another prefix = %q, want %q", got, "call-"+a[1:])
	}
	if got := infinity.DeriveID("", "thread-1", "call_1"); got != a[1:] {
		t.Fatalf("DeriveID with no prefix = %q, want %q", got, a[1:])
	}

	differ := [][2][]string{
		{{"thread-1", "call_1"}, {"thread-1", "call_2"}},
		{{"thread-1", "call_1"}, {"thread-2", "call_1"}},
		{{"thread-1", "call_1"}, {"call_1", "thread-1"}},
		{{"ab", "c"}, {"a", "bc"}},
		{{"abc"}, {"ab", "c"}},
		{{"a"}, {"a", ""}},
		{{}, {""}},
		{{"", ""}, {""}},
	}
	for _, d := range differ {
		x, y := infinity.DeriveID("t", d[0]...), infinity.DeriveID("t", d[1]...)
		if x == y {
			t.Errorf("DeriveID(%q) = DeriveID(%q) = %q, want them to differ", d[0], d[1], x)
		}
	}

	// Many distinct inputs give distinct ids.
	seen := make(map[string]string)
	for i := range 2000 {
		parts := []string{"thread", strings.Repeat("x", i%7), string(rune('a' + i%26)), strings.Repeat("y", i/182)}
		key := strings.Join(parts, "\x00")
		id := infinity.DeriveID("t", parts...)
		if prev, ok := seen[id]; ok && prev != key {
			t.Fatalf("DeriveID collision: %q and %q both give %q", prev, key, id)
		}
		seen[id] = key
	}
}
