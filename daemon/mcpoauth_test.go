//go:build unix

package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
)

// waitAuthorize polls a thread until it shows an authorization URL.
func waitAuthorize(t *testing.T, c *daemon.Client, id infinity.ThreadID) daemon.ThreadView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := c.Thread(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Authorize != nil {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %s is %s (%s), never asks for an authorization", id, v.Status, v.Detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noRedirect is a browser that shows where it would be sent.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusFound {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, string(b)
}

// apiError decodes the API's error form.
func apiError(t *testing.T, body string) daemon.APIError {
	t.Helper()
	var e struct {
		Error daemon.APIError `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not the API's error form: %q (%v)", body, err)
	}
	return e.Error
}

// tokensFile returns the one tokens file under home, checking its mode and
// its directory's.
func tokensFile(t *testing.T, home string) (path string, access, refresh string) {
	t.Helper()
	dir := filepath.Join(home, "mcp-oauth")
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("tokens directory: %v %v", fi, err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("tokens files: %v %v", files, err)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file: %v %v", fi, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Token struct {
			Access  string `json:"access_token"`
			Refresh string `json:"refresh_token"`
		} `json:"token"`
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.Token.Access == "" || rec.Token.Refresh == "" {
		t.Fatalf("tokens file %s: %v", b, err)
	}
	return files[0], rec.Token.Access, rec.Token.Refresh
}

// tokensOnlyInFile fails if a token is in the log or in any file of home
// but the tokens file.
func tokensOnlyInFile(t *testing.T, home, logs, tokensPath string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a token is in the daemon's log:\n%s", logs)
		}
	}
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == tokensPath {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // a lock or socket
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("a token is in %s", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An MCP server that wants OAuth, with its own authorization server, both
// started here, driven from outside the daemon: the agent registers (the
// server is not connected yet); its thread waits, showing the
// authorization URL (thread view, list); the test plays the browser, which
// the authorization server sends back to the daemon's callback (no bearer
// token), and the thread's tool call then succeeds. A replayed, forged or
// missing state gets the API's error form. The tokens are in one 0600 file
// (directory 0700) and nowhere else (log, history); after a restart on
// another port they are used again (no second authorization) and
// refreshed once expired.
func TestMCPOAuthThroughTheDaemon(t *testing.T) {
	srv := mcptest.StartOAuth(mcptest.OAuthOptions{TokenTTL: time.Second, Scopes: []string{"notes.read"}})
	t.Cleanup(srv.Close)
	home := t.TempDir()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d, c := startDaemonWith(t, daemon.Options{Home: home, Logger: log})
	yaml := fmt.Sprintf(`name: notes
model: {provider: scripted, script: s.json}
tools:
  mcp:
    - url: %s
      name: notes
      oauth: {}
`, srv.URL)
	agent, start := agentStarter(t, c, "notes.yaml", yaml, mcpScript)
	if n := srv.Counts(); n.Refused != 0 || n.Registrations != 0 {
		t.Fatalf("the server was reached at registration: %+v", n)
	}

	root := start("add two numbers")
	v := waitAuthorize(t, c, root)
	authURL := v.Authorize.URL
	if v.Status != daemon.StatusWaiting || v.Authorize.Tool != "MCP server notes" || v.Detail != "authorization of MCP server notes: open "+authURL ||
		!strings.HasPrefix(authURL, srv.Issuer+"/authorize?") {
		t.Fatalf("view: %s %q %+v", v.Status, v.Detail, v.Authorize)
	}
	u, _ := url.Parse(authURL)
	redirect := "http://" + d.Addr() + daemon.MCPOAuthCallbackPath
	if q := u.Query(); q.Get("redirect_uri") != redirect || q.Get("code_challenge_method") != "S256" || q.Get("resource") != srv.URL {
		t.Fatalf("authorization URL %s", authURL)
	}
	list, err := c.Threads(t.Context(), true)
	if err != nil || len(list) != 1 || list[0].Detail != v.Detail {
		t.Fatalf("list: %+v %v", list, err)
	}
	time.Sleep(300 * time.Millisecond)
	if h := waitItems(t, c, root, "the history", has()); strings.Contains(h, "add {") {
		t.Fatalf("the model ran before the authorization:\n%s", h)
	}
	if l := logs.String(); strings.Contains(l, "level=ERROR") {
		t.Fatalf("waiting for the user was logged as an error:\n%s", l)
	}

	// The browser: the authorization server grants and sends it back.
	status, back := get(t, authURL)
	if status != http.StatusFound || !strings.HasPrefix(back, redirect+"?") {
		t.Fatalf("authorization: %d %s", status, back)
	}
	bu, _ := url.Parse(back)
	forged := *bu
	fq := bu.Query()
	fq.Set("state", "forged-"+fq.Get("state"))
	forged.RawQuery = fq.Encode()
	status, body := get(t, forged.String())
	if e := apiError(t, body); status != http.StatusBadRequest || e.Code != daemon.CodeUnknownState || !strings.Contains(e.Message, "no MCP authorization waits for this state") {
		t.Fatalf("forged state: %d %s", status, body)
	}
	status, body = get(t, back)
	if status != http.StatusOK || !strings.Contains(body, "MCP server notes is authorized") {
		t.Fatalf("callback: %d %s", status, body)
	}
	status, body = get(t, back)
	if e := apiError(t, body); status != http.StatusBadRequest || e.Code != daemon.CodeUnknownState {
		t.Fatalf("replayed state: %d %s", status, body)
	}
	noState := *bu
	noState.RawQuery = "code=x"
	status, body = get(t, noState.String())
	if e := apiError(t, body); status != http.StatusBadRequest || e.Code != daemon.CodeBadRequest {
		t.Fatalf("no state: %d %s", status, body)
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	h := waitItems(t, c, root, "the sum", has("add {", "5", "sum done"))
	v, err = c.Thread(t.Context(), root)
	if err != nil || v.Authorize != nil || strings.Contains(v.Detail, "authorization") {
		t.Fatalf("view after the authorization: %+v %v", v, err)
	}
	n := srv.Counts()
	if n.Authorizations != 1 || n.Exchanges != 1 || n.Registrations != 1 {
		t.Fatalf("counts %+v", n)
	}
	path, access, refresh := tokensFile(t, home)
	if strings.Contains(h, access) || strings.Contains(h, refresh) {
		t.Fatalf("a token is in the history:\n%s", h)
	}

	// A restart, on another port: the tokens are used again, refreshed
	// (they expired), and no one is asked.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_, c = startDaemonWith(t, daemon.Options{Home: home, Logger: log})
	st, err := c.Start(t.Context(), daemon.StartRequest{Agent: agent.Key, Text: "add again"})
	if err != nil {
		t.Fatal(err)
	}
	waitItems(t, c, st.Thread, "the sum after the restart", has("add {", "5", "sum done"))
	if m := srv.Counts(); m.Authorizations != 1 || m.Refreshes <= n.Refreshes {
		t.Fatalf("counts after the restart %+v (before %+v): want no new authorization and a refresh", m, n)
	}
	_, access2, refresh2 := tokensFile(t, home)
	if refresh2 == refresh {
		t.Error("the refreshed tokens were not kept")
	}
	tokensOnlyInFile(t, home, logs.String(), path, access, refresh, access2, refresh2)
}

// A refused authorization: the thread says so, the next try makes a new
// URL, and authorizing with it lets the thread go on.
func TestMCPOAuthRefusedThenGranted(t *testing.T) {
	srv := mcptest.StartOAuth(mcptest.OAuthOptions{})
	t.Cleanup(srv.Close)
	_, c := startDaemonWith(t, daemon.Options{Home: t.TempDir()})
	_, start := agentStarter(t, c, "notes.yaml", fmt.Sprintf(`name: notes
model: {provider: scripted, script: s.json}
tools:
  mcp:
    - {url: %q, name: notes, oauth: {}}
`, srv.URL), mcpScript)
	root := start("add two numbers")
	first := waitAuthorize(t, c, root).Authorize.URL
	_, back := get(t, first)
	bu, _ := url.Parse(back)
	q := bu.Query()
	denied := *bu
	denied.RawQuery = url.Values{"state": {q.Get("state")}, "error": {"access_denied"}, "error_description": {"the user said no"}}.Encode()
	status, body := get(t, denied.String())
	if e := apiError(t, body); status != http.StatusBadGateway || e.Code != daemon.CodeAuthorizationFailed || !strings.Contains(e.Message, `"access_denied": the user said no`) {
		t.Fatalf("denied: %d %s", status, body)
	}
	// The refusal wakes the thread, which starts a new authorization with
	// a new URL; meanwhile the thread says why it waits, or runs
	// (connecting).
	deadline := time.Now().Add(20 * time.Second)
	var next string
	for next == "" || next == first {
		v, err := c.Thread(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		if v.Authorize != nil {
			next = v.Authorize.URL
		} else if v.Status != daemon.StatusRunning && (v.Status != daemon.StatusWaiting || !strings.Contains(v.Detail, "authorization of MCP server notes failed (MCP server notes: authorization failed: the authorization server answered \"access_denied\": the user said no); a new authorization URL comes with the next try")) {
			t.Fatalf("after the refusal: %s %q", v.Status, v.Detail)
		}
		if time.Now().After(deadline) {
			t.Fatal("no new authorization URL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, back = get(t, next)
	if status, body := get(t, back); status != http.StatusOK {
		t.Fatalf("callback: %d %s", status, body)
	}
	waitItems(t, c, root, "the sum", has("add {", "5", "sum done"))
}

// Only GET /oauth/mcp/callback goes without the bearer token: another
// method on that path is refused as on any route, in the API's error
// form, and the Host check applies to the callback too.
func TestMCPOAuthCallbackOnlyGET(t *testing.T) {
	d, _ := startDaemonWith(t, daemon.Options{Home: t.TempDir()})
	base := "http://" + d.Addr() + daemon.MCPOAuthCallbackPath
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead} {
		req, err := http.NewRequestWithContext(t.Context(), method, base+"?state=s&code=c", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %s %s", method, daemon.MCPOAuthCallbackPath, resp.Status, b)
		} else if method != http.MethodHead {
			if e := apiError(t, string(b)); e.Code != daemon.CodeUnauthorized {
				t.Errorf("%s: %s", method, b)
			}
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"?state=s&code=c", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "evil.example:80"
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if e := apiError(t, string(b)); resp.StatusCode != http.StatusForbidden || e.Code != daemon.CodeBadHost {
		t.Errorf("callback with a foreign Host: %s %s", resp.Status, b)
	}
}
