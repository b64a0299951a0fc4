package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
)

var stateCases = []clockedCase[infinity.StateStore]{
	{"RoundTrip", testStateRoundTrip},
	{"NotFound", testStateNotFound},
	{"Conflict", testStateConflict},
	{"ConcurrentSave", testStateConcurrentSave},
	{"Isolation", testStateIsolation},
	{"ProcessedPerThread", testProcessedPerThread},
	{"Expiry", testProcessedExpiry},
	{"RemarkExtends", testProcessedRemark},
	{"ManyProcessed", testManyProcessed},
}

func sampleState(tag string) infinity.State {
	return infinity.State{
		Metadata:      json.RawMessage(fmt.Sprintf(`{"user": "u-%s", "plan": {"tier": "pro", "seats": 3}}`, tag)),
		Subscriptions: []string{"call-" + tag + "-1", "call-" + tag + "-2"},
		Choices: []infinity.PendingChoice{
			{ID: "choice-" + tag, Prompt: "Pick one", Choices: []string{"red", "green"}, Default: 1, ResponseURL: "https://example.com/r/" + tag},
			{ID: "choice2-" + tag, Prompt: "Sure?", Choices: []string{"yes"}},
		},
	}
}

func load(t *testing.T, s infinity.StateStore, id infinity.ThreadID) (infinity.State, infinity.Version) {
	t.Helper()
	st, v, err := s.Load(t.Context(), id)
	noErr(t, err, "Load "+string(id))
	return st, v
}

func save(t *testing.T, s infinity.StateStore, id infinity.ThreadID, st infinity.State, v infinity.Version) infinity.Version {
	t.Helper()
	nv, err := s.Save(t.Context(), id, st, v)
	noErr(t, err, fmt.Sprintf("Save %s at version %d", id, v))
	if nv != v+1 {
		t.Fatalf("Save %s at version %d returned version %d, want %d", id, v, nv, v+1)
	}
	return nv
}

func checkState(t *testing.T, s infinity.StateStore, id infinity.ThreadID, want infinity.State, wantV infinity.Version, what string) {
	t.Helper()
	got, v := load(t, s, id)
	if v != wantV {
		t.Errorf("%s: version %d, want %d", what, v, wantV)
	}
	if d := jsonDiff(got, want); d != "" {
		t.Errorf("%s: state: %s", what, d)
	}
}

func processed(t *testing.T, s infinity.StateStore, id infinity.ThreadID, m infinity.MessageID) bool {
	t.Helper()
	ok, err := s.Processed(t.Context(), id, m)
	noErr(t, err, fmt.Sprintf("Processed %s %s", id, m))
	return ok
}

func mark(t *testing.T, s infinity.StateStore, id infinity.ThreadID, ttl time.Duration, msgs ...infinity.MessageID) {
	t.Helper()
	noErr(t, s.MarkProcessed(t.Context(), id, msgs, ttl), "MarkProcessed "+string(id))
}

func testStateRoundTrip(t *testing.T, s infinity.StateStore, _ *clocktest.Clock) {
	id := idsFor()("t")
	v := save(t, s, id, sampleState("a"), 0)
	checkState(t, s, id, sampleState("a"), v, "after first Save")
	v = save(t, s, id, sampleState("b"), v)
	checkState(t, s, id, sampleState("b"), v, "after second Save")
	// Fields can be emptied.
	v = save(t, s, id, infinity.State{Subscriptions: []string{"only"}}, v)
	checkState(t, s, id, infinity.State{Subscriptions: []string{"only"}}, v, "after third Save")
	v = save(t, s, id, infinity.State{}, v)
	checkState(t, s, id, infinity.State{}, v, "after saving an empty state")
	if v != 4 {
		t.Errorf("version after four saves = %d, want 4", v)
	}
}

func testStateNotFound(t *testing.T, s infinity.StateStore, _ *clocktest.Clock) {
	ids := idsFor()
	_, _, err := s.Load(t.Context(), ids("never"))
	wantErr(t, err, infinity.ErrNotFound, "Load of a thread that never saved")
	if processed(t, s, ids("never"), "m1") {
		t.Error("Processed = true for a thread that never marked anything")
	}
	// Saving one thread does not create another, and marking does not
	// create a state record.
	save(t, s, ids("a"), sampleState("a"), 0)
	mark(t, s, ids("b"), time.Hour, "m1")
	for _, id := range []infinity.ThreadID{ids("b"), ids("never")} {
		_, _, err = s.Load(t.Context(), id)
		wantErr(t, err, infinity.ErrNotFound, "Load "+string(id))
	}
}

func testStateConflict(t *testing.T, s infinity.StateStore, _ *clocktest.Clock) {
	id := idsFor()("t")
	_, err := s.Save(t.Context(), id, sampleState("x"), 5)
	wantErr(t, err, infinity.ErrConflict, "Save at version 5 of a missing record")
	_, _, err = s.Load(t.Context(), id)
	wantErr(t, err, infinity.ErrNotFound, "Load after a failed create")

	v := save(t, s, id, sampleState("a"), 0)
	_, err = s.Save(t.Context(), id, sampleState("x"), 0)
	wantErr(t, err, infinity.ErrConflict, "Save at version 0 of an existing record")
	v = save(t, s, id, sampleState("b"), v)
	for _, bad := range []infinity.Version{0, v - 1, v + 1, v + 10} {
		_, err = s.Save(t.Context(), id, sampleState("x"), bad)
		wantErr(t, err, infinity.ErrConflict, fmt.Sprintf("Save at version %d when %d is stored", bad, v))
	}
	checkState(t, s, id, sampleState("b"), v, "after failed saves")
}

func testStateConcurrentSave(t *testing.T, s infinity.StateStore, _ *clocktest.Clock) {
	ids := idsFor()
	const workers = 8
	run := func(id infinity.ThreadID, v infinity.Version) string {
		t.Helper()
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			wins   atomic.Int32
			winner atomic.Value
		)
		for w := range workers {
			wg.Go(func() {
				<-start
				tag := fmt.Sprintf("v%d-w%d", v, w)
				nv, err := s.Save(t.Context(), id, sampleState(tag), v)
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(tag)
					if nv != v+1 {
						t.Errorf("winning Save returned version %d, want %d", nv, v+1)
					}
				case !errors.Is(err, infinity.ErrConflict):
					t.Errorf("Save: %v, want nil or ErrConflict", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d concurrent Saves at version %d succeeded, want exactly 1", n, v)
		}
		return winner.Load().(string)
	}
	id := ids("t")
	for v := range infinity.Version(4) {
		tag := run(id, v)
		checkState(t, s, id, sampleState(tag), v+1, fmt.Sprintf("after concurrent saves at version %d", v))
	}
}

func testStateIsolation(t *testing.T, s infinity.StateStore, _ *clocktest.Clock) {
	id := idsFor()("t")
	mutate := func(st *infinity.State) {
		scramble(st.Metadata)
		st.Subscriptions[0] = "changed"
		st.Choices[0].Prompt = "changed"
		st.Choices[0].Choices[0] = "changed"
	}
	st := sampleState("a")
	v := save(t, s, id, st, 0)
	mutate(&st)
	checkState(t, s, id, sampleState("a"), v, "after mutating the saved state")
	got, _ := load(t, s, id)
	mutate(&got)
	checkState(t, s, id, sampleState("a"), v, "after mutating a loaded state")
	msgs := []infinity.MessageID{"m1"}
	mark(t, s, id, time.Hour, msgs...)
	msgs[0] = "m2"
	if !processed(t, s, id, "m1") || processed(t, s, id, "m2") {
		t.Error("Processed follows the mutated slice")
	}
}

func testProcessedPerThread(t *testing.T, s infinity.StateStore, _ *clocktest.Clock) {
	ids := idsFor()
	a, b := ids("a"), ids("b")
	mark(t, s, a, time.Hour, "m1", "m2")
	for _, tc := range []struct {
		id   infinity.ThreadID
		m    infinity.MessageID
		want bool
	}{
		{a, "m1", true}, {a, "m2", true}, {a, "m3", false}, {b, "m1", false}, {b, "m2", false},
	} {
		if got := processed(t, s, tc.id, tc.m); got != tc.want {
			t.Errorf("Processed(%s, %s) = %v, want %v", tc.id, tc.m, got, tc.want)
		}
	}
	mark(t, s, b, time.Hour, "m3")
	if !processed(t, s, b, "m3") || processed(t, s, a, "m3") {
		t.Error("marking m3 in b: want processed in b only")
	}
	// Marking nothing is harmless.
	mark(t, s, a, time.Hour)
	if !processed(t, s, a, "m1") {
		t.Error("Processed(a, m1) = false after an empty MarkProcessed")
	}
}

func testProcessedExpiry(t *testing.T, s infinity.StateStore, clock *clocktest.Clock) {
	ids := idsFor()
	a := ids("a")
	mark(t, s, a, time.Minute, "m1")
	mark(t, s, a, time.Hour, "m2")
	if !processed(t, s, a, "m1") {
		t.Fatal("Processed = false right after marking")
	}
	clock.Advance(30 * time.Second)
	if !processed(t, s, a, "m1") {
		t.Fatal("Processed = false 30s into a 1m ttl")
	}
	clock.Advance(90 * time.Second)
	if processed(t, s, a, "m1") {
		t.Fatal("Processed = true 2m after marking with a 1m ttl")
	}
	if !processed(t, s, a, "m2") {
		t.Fatal("Processed(m2) = false 2m into a 1h ttl")
	}
	// An expired id can be marked again.
	mark(t, s, a, time.Minute, "m1")
	if !processed(t, s, a, "m1") {
		t.Fatal("Processed = false after marking an expired id again")
	}
	clock.Advance(time.Hour)
	if processed(t, s, a, "m1") || processed(t, s, a, "m2") {
		t.Fatal("Processed = true after every ttl ran out")
	}
}

func testProcessedRemark(t *testing.T, s infinity.StateStore, clock *clocktest.Clock) {
	a := idsFor()("a")
	mark(t, s, a, time.Minute, "m1")
	clock.Advance(45 * time.Second)
	mark(t, s, a, time.Minute, "m1") // now expires 105s after the start
	clock.Advance(45 * time.Second)
	if !processed(t, s, a, "m1") {
		t.Fatal("Processed = false 90s after the first mark: re-marking did not extend the expiry")
	}
	clock.Advance(30 * time.Second)
	if processed(t, s, a, "m1") {
		t.Fatal("Processed = true 120s after the first mark, 75s after re-marking with a 1m ttl")
	}
}

func testManyProcessed(t *testing.T, s infinity.StateStore, clock *clocktest.Clock) {
	ids := idsFor()
	a, b := ids("a"), ids("b")
	const n, batch = 300, 25
	batchOf := func(prefix string, i int) []infinity.MessageID {
		msgs := make([]infinity.MessageID, batch)
		for j := range msgs {
			msgs[j] = infinity.MessageID(fmt.Sprintf("%s%d", prefix, i+j))
		}
		return msgs
	}
	for i := 0; i < n; i += batch {
		mark(t, s, a, time.Minute, batchOf("old", i)...)
	}
	clock.Advance(2 * time.Minute)
	for i := 0; i < n; i += batch {
		mark(t, s, b, time.Minute, batchOf("new", i)...)
	}
	for i := 0; i < n; i += 37 {
		if processed(t, s, a, infinity.MessageID(fmt.Sprintf("old%d", i))) {
			t.Errorf("Processed(a, old%d) = true after expiry", i)
		}
		if !processed(t, s, b, infinity.MessageID(fmt.Sprintf("new%d", i))) {
			t.Errorf("Processed(b, new%d) = false", i)
		}
	}
}
