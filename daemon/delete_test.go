package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/disk"
)

// deleteHome writes sessionsTree into a home, closes troot's tree, adds
// an open root with a child, and starts a daemon on it.
func deleteHome(t *testing.T, o Options) (*Daemon, *Client) {
	t.Helper()
	ctx := t.Context()
	o.Home = t.TempDir()
	st, err := disk.Open(filepath.Join(o.Home, storeDir))
	if err != nil {
		t.Fatal(err)
	}
	conv := st.Conversations()
	sessionsTree(t, ctx, conv, st.State())
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "troot", Expected: 3, Close: []infinity.ThreadID{"troot", "tchild-b"}}); err != nil {
		t.Fatal(err)
	}
	open := infinity.ThreadInfo{ID: "topen", Root: "topen", Created: at(20)}
	kid := infinity.ThreadInfo{ID: "topen-kid", Parent: "topen", Root: "topen", Created: at(21)}
	if err := conv.CreateThread(ctx, open); err != nil {
		t.Fatal(err)
	}
	if _, err := conv.Commit(ctx, infinity.Commit{Thread: "topen", Create: []infinity.ThreadInfo{kid}}); err != nil {
		t.Fatal(err)
	}
	// A timer of the closed tree, waiting in the inbox.
	if _, err := st.Inbox().Put(ctx, infinity.InputMessage{ID: "wake", GroupID: "tchild-b", Content: infinity.TextContent("x")}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	o.Addr = "127.0.0.1:0"
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(context.Background()) }()
	t.Cleanup(func() {
		d.Close()
		<-done
	})
	c, _, err := Dial(o.Home)
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != status || ae.Code != code {
		t.Fatalf("got %v, want %d %s", err, status, code)
	}
}

// DELETE /v1/threads/{id} deletes a closed tree with everything it holds,
// and refuses anything else with the documented codes.
func TestDeleteTree(t *testing.T) {
	_, c := deleteHome(t, Options{})
	ctx := t.Context()
	_, err := c.Delete(ctx, "nobody")
	wantAPIError(t, err, http.StatusNotFound, CodeNotFound)
	_, err = c.Delete(ctx, "topen")
	wantAPIError(t, err, http.StatusConflict, CodeConflict)
	_, err = c.Delete(ctx, "tchild-a")
	wantAPIError(t, err, http.StatusBadRequest, CodeBadRequest)
	_, err = c.Delete(ctx, "topen-kid")
	wantAPIError(t, err, http.StatusBadRequest, CodeBadRequest)

	st, err := c.Status(ctx)
	if err != nil || st.Waiting != 1 {
		t.Fatalf("status before: %+v %v", st, err)
	}
	del, err := c.Delete(ctx, "troot")
	if err != nil {
		t.Fatal(err)
	}
	if want := []infinity.ThreadID{"troot", "tchild-a", "tgrand", "tchild-b"}; !slices.Equal(del.Threads, want) {
		t.Fatalf("deleted %v, want %v", del.Threads, want)
	}
	for _, id := range del.Threads {
		_, err := c.Thread(ctx, id)
		wantAPIError(t, err, http.StatusNotFound, CodeNotFound)
	}
	views, err := c.Threads(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var left []infinity.ThreadID
	for _, v := range views {
		left = append(left, v.ID)
	}
	slices.Sort(left)
	if want := []infinity.ThreadID{"topen", "topen-kid", "tother"}; !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
	st, err = c.Status(ctx)
	if err != nil || st.Waiting != 0 || st.Threads != 3 {
		t.Fatalf("status after: %+v %v; want 3 threads, nothing waiting", st, err)
	}
	_, err = c.Delete(ctx, "troot")
	wantAPIError(t, err, http.StatusNotFound, CodeNotFound)
}

// Retention deletes closed trees older than the cutoff, and nothing else.
func TestRetention(t *testing.T) {
	d, c := deleteHome(t, Options{})
	ctx := t.Context()
	// The closed trees' last items are from t0 (2025 and before): a cutoff
	// before them deletes nothing.
	n, err := d.sweepClosed(ctx, t0.Add(-time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("sweep before: %d, %v", n, err)
	}
	n, err = d.sweepClosed(ctx, time.Now())
	if err != nil || n != 2 {
		t.Fatalf("sweep: %d trees, %v; want troot and tother", n, err)
	}
	views, err := c.Threads(ctx, true)
	if err != nil || len(views) != 1 || views[0].ID != "topen" {
		t.Fatalf("roots left: %+v, %v", views, err)
	}
}

// The daemon started with RetainClosed sweeps at start.
func TestRetentionAtStart(t *testing.T) {
	_, c := deleteHome(t, Options{RetainClosed: time.Hour})
	deadline := time.Now().Add(10 * time.Second)
	for {
		views, err := c.Threads(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		if len(views) == 1 && views[0].ID == "topen" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("roots left: %d", len(views))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
