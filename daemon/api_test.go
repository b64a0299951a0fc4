package daemon_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/persistence/disk"
	"github.com/infinity-runtime/infinity/persistence/file"
)

// startDaemon opens a daemon on a free port in home and serves it until the
// test ends.
func startDaemon(t *testing.T, home string, store ...disk.Option) (*daemon.Daemon, *daemon.Client) {
	t.Helper()
	return startDaemonWith(t, daemon.Options{Home: home, Store: store})
}

// startDaemonWith is startDaemon with more options: a free port, no log
// and a 100 ms idle unless o says otherwise.
func startDaemonWith(t *testing.T, o daemon.Options) (*daemon.Daemon, *daemon.Client) {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Idle == 0 {
		o.Idle = 100 * time.Millisecond
	}
	d, err := daemon.Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(context.Background()) }()
	t.Cleanup(func() {
		d.Close()
		<-done
	})
	c, _, err := daemon.Dial(o.Home)
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *daemon.APIError
	if !errors.As(err, &ae) || ae.Status != status || ae.Code != code {
		t.Fatalf("error %v (%#v), want HTTP %d %s", err, ae, status, code)
	}
}

// raw sends a request with full control over its headers and body.
func raw(t *testing.T, d *daemon.Daemon, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+d.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSecurityAndBadInput(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemon(t, home)
	tok, err := daemon.ReadToken(home)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(home, "token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	auth := "Bearer " + tok
	cases := []struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		status       int
		code         string
	}{
		{"missing token", "GET", "/v1/status", "", nil, 401, daemon.CodeUnauthorized},
		{"wrong token", "GET", "/v1/status", "", map[string]string{"Authorization": "Bearer nope"}, 401, daemon.CodeUnauthorized},
		{"wrong origin", "POST", "/v1/threads", `{"text":"hi"}`, map[string]string{"Authorization": auth, "Origin": "http://evil.example"}, 403, daemon.CodeBadOrigin},
		{"rebound host", "GET", "/v1/status", "", map[string]string{"Authorization": auth, "Host": "evil.example:80"}, 403, daemon.CodeBadHost},
		{"malformed JSON", "POST", "/v1/threads", `{"text":`, map[string]string{"Authorization": auth}, 400, daemon.CodeInvalidJSON},
		{"unknown field", "POST", "/v1/threads", `{"txt":"hi"}`, map[string]string{"Authorization": auth}, 400, daemon.CodeInvalidJSON},
		{"oversized input", "POST", "/v1/threads/tabc/messages", `{"text":"` + strings.Repeat("x", daemon.MaxBody) + `"}`, map[string]string{"Authorization": auth}, 413, daemon.CodeTooLarge},
		{"unknown thread", "GET", "/v1/threads/tnothere", "", map[string]string{"Authorization": auth}, 404, daemon.CodeNotFound},
		{"bad thread id", "GET", "/v1/threads/bad%20id", "", map[string]string{"Authorization": auth}, 400, daemon.CodeBadRequest},
		{"unknown route", "GET", "/v2/nothing", "", map[string]string{"Authorization": auth}, 404, daemon.CodeNotFound},
		{"unknown agent", "POST", "/v1/threads", `{"agent":"ghost","text":"hi"}`, map[string]string{"Authorization": auth}, 404, daemon.CodeNotFound},
		{"empty text", "POST", "/v1/threads", `{"text":"  "}`, map[string]string{"Authorization": auth}, 400, daemon.CodeBadRequest},
		// Answers that the mux, the server or the RAP handler would give in
		// their own forms come in the API's.
		{"unclean path", "GET", "/v1/threads/../status", "", map[string]string{"Authorization": auth}, 400, daemon.CodeBadRequest},
		{"doubled slash", "GET", "/v1//threads", "", map[string]string{"Authorization": auth}, 400, daemon.CodeBadRequest},
		{"oversized headers", "GET", "/v1/status", "", map[string]string{"Authorization": auth, "X-Big": strings.Repeat("x", daemon.MaxHeaderBytes)}, 431, daemon.CodeHeadersTooLarge},
		{"callback with a forged token", "POST", "/rap/callback/forged?call=c1", `{"type":"tool_result","group_id":"t1","id":"c1","text":"done"}`, nil, 401, daemon.CodeUnauthorized},
		{"callback without a token", "POST", "/rap/callback/", `{}`, nil, 404, daemon.CodeNotFound},
		{"callback by GET", "GET", "/rap/callback/forged", "", nil, 405, daemon.CodeMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := raw(t, d, tc.method, tc.path, tc.body, tc.hdr)
			if status != tc.status || !strings.Contains(body, `"code": "`+tc.code+`"`) {
				t.Fatalf("HTTP %d %s, want %d with code %s", status, body, tc.status, tc.code)
			}
		})
	}
	// A page the daemon itself serves may call it.
	status, body := raw(t, d, "GET", "/v1/status", "", map[string]string{"Authorization": auth, "Origin": "http://" + d.Addr()})
	if status != 200 {
		t.Fatalf("same-origin request: HTTP %d %s", status, body)
	}
	_, err = c.Send(t.Context(), "tnothere", daemon.MessageRequest{Text: "hi"})
	wantCode(t, err, 404, daemon.CodeNotFound)
	_, err = c.Answer(t.Context(), "tnothere", daemon.AnswerRequest{Choice: "a"})
	wantCode(t, err, 404, daemon.CodeNotFound)
}

func TestRemoteAddressRefused(t *testing.T) {
	_, err := daemon.Open(t.Context(), daemon.Options{Home: t.TempDir(), Addr: "0.0.0.0:0"})
	if !errors.Is(err, infinity.ErrInvalid) {
		t.Fatalf("Open on 0.0.0.0: %v, want ErrInvalid", err)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	home := t.TempDir()
	startDaemon(t, home)
	_, err := daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, daemon.ErrLocked) {
		t.Fatalf("second daemon on one home: %v, want ErrLocked", err)
	}
}

// waitStatus polls a thread until its status is want.
func waitStatus(t *testing.T, c *daemon.Client, id infinity.ThreadID, want, detail string) daemon.ThreadView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := c.Thread(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status == want && (detail == "" || v.Detail == detail) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %s is %s (%s), want %s %s", id, v.Status, v.Detail, want, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The demo through the API: children sleep (status shows it), report and
// close; the tree, the transcript and follow work; a restart keeps it all.
func TestDemoThroughAPIAndRestart(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemon(t, home)
	ctx := t.Context()
	st, err := c.Start(ctx, daemon.StartRequest{Agent: "demo", Text: "Run the offline demo."})
	if err != nil {
		t.Fatal(err)
	}
	root := st.Thread
	var kid daemon.Tree
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr, err := c.Tree(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Threads) == 3 && tr.Threads[2].Status == daemon.StatusSleeping {
			kid = tr.Threads[2]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children never slept: %+v", tr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if kid.Until == nil || time.Until(*kid.Until) <= 0 {
		t.Fatalf("a sleeping child has no future wake-up: %+v", kid)
	}
	if sv, err := c.Status(ctx); err != nil || sv.Threads != 4 || sv.Waiting < 1 {
		t.Fatalf("status while a child sleeps: %+v, %v; want 4 threads and its timer waiting", sv, err)
	}
	// Follow the root live until it answers.
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var answered bool
	err = c.Items(fctx, root, 0, true, func(l daemon.ItemLine) error {
		if l.Item != nil && l.Item.Kind == infinity.KindAssistant && strings.Contains(l.Item.Text, "All three children reported") {
			answered = true
			cancel()
		}
		return nil
	})
	if !answered {
		t.Fatalf("following the root never showed the answer: %v", err)
	}
	v := waitStatus(t, c, root, daemon.StatusWaiting, daemon.WaitingForInput)
	if v.Tokens.Input == 0 || v.Items == 0 || v.Children != 3 {
		t.Fatalf("root view: %+v", v)
	}
	all, err := c.Threads(ctx, false)
	if err != nil || len(all) != 4 {
		t.Fatalf("Threads = %d, %v; want 4", len(all), err)
	}

	// Restart: everything is still there, and the thread takes new input.
	d.Close()
	d, c = startDaemon(t, home)
	v2, err := c.Thread(ctx, root)
	if err != nil || v2.Items != v.Items {
		t.Fatalf("after a restart: %+v, %v; want %d items", v2, err, v.Items)
	}
	if _, err := c.Send(ctx, root, daemon.MessageRequest{Text: "thanks", ID: "m-thanks"}); err != nil {
		t.Fatal(err)
	}
	// A resend with the same id is harmless.
	if _, err := c.Send(ctx, root, daemon.MessageRequest{Text: "thanks", ID: "m-thanks"}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, root, daemon.StatusWaiting, daemon.WaitingForInput)
	time.Sleep(100 * time.Millisecond)
	n := 0
	if err := c.Items(ctx, root, 0, false, func(l daemon.ItemLine) error {
		if l.Item.Kind == infinity.KindUser && l.Item.Text == "thanks" {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the resent message appears %d times, want once", n)
	}

	// Close the root: the whole tree is closed, input is refused, a
	// followed stream ends.
	if _, err := c.Close(ctx, root); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, root, daemon.StatusClosed, "")
	_, err = c.Send(ctx, root, daemon.MessageRequest{Text: "more"})
	wantCode(t, err, 409, daemon.CodeClosed)
	var end string
	if err := c.Items(ctx, root, 0, true, func(l daemon.ItemLine) error { end = l.End; return nil }); err != nil {
		t.Fatal(err)
	}
	if end != "closed" {
		t.Fatalf("a followed stream of a closed thread ended with %q", end)
	}
	_, err = c.Answer(ctx, root, daemon.AnswerRequest{Choice: "x"})
	wantCode(t, err, 409, daemon.CodeNoChoice)

	// Every input and timer was consumed: the durable inbox keeps nothing
	// (a leftover would be redelivered at every restart).
	d.Close()
	store, err := disk.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if q, err := store.Inbox().Waiting(ctx); err != nil || len(q) != 0 {
		t.Fatalf("the inbox still holds %d messages (%v): %+v", len(q), err, q)
	}
}

// Export and import through the API: a second daemon gets the threads and
// the agent files they use.
func TestExportImport(t *testing.T) {
	ctx := t.Context()
	_, c := startDaemon(t, t.TempDir())
	script := `{"rules":[{"when":{},"reply":{"text":"scripted hello"}}]}`
	info, err := c.RegisterAgent(ctx, daemon.AgentRequest{Origin: "mine.yaml", AgentSource: daemon.AgentSource{
		YAML: "name: mine\nmodel:\n  provider: scripted\n  script: s.json\n", Script: script}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Start(ctx, daemon.StartRequest{Agent: "mine", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	var doc strings.Builder
	if err := c.Export(ctx, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.String(), "scripted hello") || !strings.Contains(doc.String(), info.Key) {
		t.Fatalf("export lacks the history or the agent:\n%s", doc.String())
	}

	_, c2 := startDaemon(t, t.TempDir())
	rep, err := c2.Import(ctx, strings.NewReader(doc.String()))
	if err != nil || len(rep.Imported) != 1 {
		t.Fatalf("Import = %+v, %v", rep, err)
	}
	if _, err := c2.Send(ctx, st.Thread, daemon.MessageRequest{Text: "again"}); err != nil {
		t.Fatal(err)
	}
	v := waitStatus(t, c2, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	if v.Items != 4 || v.Agent != info.Key {
		t.Fatalf("imported thread after one more turn: %+v", v)
	}
	rep, err = c2.Import(ctx, strings.NewReader(doc.String()))
	if err != nil || len(rep.Skipped) != 1 {
		t.Fatalf("second Import = %+v, %v; want the root skipped", rep, err)
	}
	_, err = c2.Import(ctx, strings.NewReader(`{"format":"nope"}`))
	wantCode(t, err, 400, daemon.CodeBadRequest)
}

// A bad agent file is refused with its line and field.
func TestBadAgentFile(t *testing.T) {
	_, c := startDaemon(t, t.TempDir())
	_, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "bad.yaml", AgentSource: daemon.AgentSource{
		YAML: "name: bad\nmodel:\n  provider: scripted\n  demo: true\nlimits:\n  max_depth: lots\n"}})
	wantCode(t, err, 400, daemon.CodeBadRequest)
	if !strings.Contains(err.Error(), "bad.yaml:6:") || !strings.Contains(err.Error(), "limits.max_depth") {
		t.Fatalf("error does not name the line and field: %v", err)
	}
	_, err = c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "tools.yaml", AgentSource: daemon.AgentSource{
		YAML: "name: t\nmodel:\n  provider: scripted\n  demo: true\ntools:\n  mcp: [\"http://127.0.0.1:9/\"]\n"}})
	wantCode(t, err, 502, daemon.CodeToolUnreachable)
}

// A home the journal store of earlier versions wrote is converted at the
// first start: its threads are there, and they take input.
func TestUpgradeJournalHome(t *testing.T) {
	home := t.TempDir()
	old, err := file.Open(filepath.Join(home, "store"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	info := infinity.ThreadInfo{ID: "t-old", Root: "t-old", Created: at}
	if err := old.Conversations().CreateThread(t.Context(), info); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Conversations().Commit(t.Context(), infinity.Commit{Thread: "t-old", Items: []infinity.Item{
		{ID: "u1", Kind: infinity.KindUser, Text: "from the journal", At: at},
		{ID: "a1", Kind: infinity.KindAssistant, Text: "noted", At: at},
	}}); err != nil {
		t.Fatal(err)
	}
	old.Close()

	d, c := startDaemon(t, home)
	defer d.Close()
	var texts []string
	err = c.Items(t.Context(), "t-old", 0, false, func(l daemon.ItemLine) error {
		if l.Item != nil {
			texts = append(texts, l.Item.Text)
		}
		return nil
	})
	if err != nil || len(texts) != 2 || texts[0] != "from the journal" {
		t.Fatalf("history after the upgrade: %q, %v", texts, err)
	}
	if _, err := os.Stat(filepath.Join(home, "store.journal")); err != nil {
		t.Fatalf("the journal was not kept: %v", err)
	}
}

// A full disk: writes answer 507 insufficient_storage, reads go on, and
// once space is freed the daemon carries on without a restart.
func TestDiskFull(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 40)
	_, c := startDaemon(t, t.TempDir(), disk.WithMinFree(64<<20),
		disk.WithFreeSpace(func(string) (uint64, error) { return free.Load(), nil }))
	ctx := t.Context()
	st, err := c.Start(ctx, daemon.StartRequest{Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, "")

	free.Store(1 << 20)
	time.Sleep(200 * time.Millisecond) // past the store's trust in its last reading
	_, err = c.Start(ctx, daemon.StartRequest{Text: "another"})
	wantCode(t, err, 507, daemon.CodeInsufficientStorage)
	var ae *daemon.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "free space") {
		t.Fatalf("the message does not say what to do: %v", err)
	}
	_, err = c.Send(ctx, st.Thread, daemon.MessageRequest{Text: "more"})
	wantCode(t, err, 507, daemon.CodeInsufficientStorage)
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("status on a full disk: %v", err)
	}
	if _, err := c.Threads(ctx, false); err != nil {
		t.Fatalf("ls on a full disk: %v", err)
	}
	if err := c.Items(ctx, st.Thread, 0, false, func(daemon.ItemLine) error { return nil }); err != nil {
		t.Fatalf("logs on a full disk: %v", err)
	}

	free.Store(1 << 40)
	if _, err := c.Send(ctx, st.Thread, daemon.MessageRequest{Text: "more"}); err != nil {
		t.Fatalf("send once space is back: %v", err)
	}
	waitItems(t, c, st.Thread, "the message sent once space was back", func(h string) bool { return strings.Contains(h, "user more") })
}

// A store that lost a file stops the daemon at start with the file named;
// nothing is started around it.
func TestDamagedStore(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemon(t, home)
	st, err := c.Start(t.Context(), daemon.StartRequest{Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, "")
	d.Close()

	m, err := filepath.Glob(filepath.Join(home, "store", "MANIFEST-*"))
	if err != nil || len(m) == 0 {
		t.Fatalf("manifest: %v %v", m, err)
	}
	for _, f := range m {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	_, err = daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, disk.ErrCorrupt) || !strings.Contains(err.Error(), "MANIFEST") {
		t.Fatalf("Open without the MANIFEST: %v; want ErrCorrupt naming it", err)
	}
}

// An agent that no longer loads at start (here: its script is gone) does
// not hand its threads to another agent: they fail with the reason.
func TestUnloadableAgentFailsItsThreads(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemon(t, home)
	info, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "mine.yaml", AgentSource: daemon.AgentSource{
		YAML: "name: mine\nmodel:\n  provider: scripted\n  script: s.json\n", Script: `{"rules":[{"when":{},"reply":{"text":"hi"}}]}`}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Start(t.Context(), daemon.StartRequest{Agent: info.Key, Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	d.Close()
	if err := os.WriteFile(filepath.Join(home, "agents", info.Key, "script.json"), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, c = startDaemon(t, home)
	if _, err := c.Send(t.Context(), st.Thread, daemon.MessageRequest{Text: "again"}); err != nil {
		t.Fatal(err)
	}
	v := waitStatus(t, c, st.Thread, daemon.StatusFailed, "")
	if !strings.Contains(v.Detail, "did not load") {
		t.Fatalf("failed thread's detail: %q", v.Detail)
	}
}

// A home that exists with looser modes is made private at start, store
// included.
func TestHomeIsMadePrivate(t *testing.T) {
	home := t.TempDir()
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, home)
	for _, dir := range []string{home, filepath.Join(home, "store")} {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v), want 0700", dir, fi.Mode().Perm(), err)
		}
	}
}
