package mcp_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/tools/mcp"
	"github.com/infinity-runtime/infinity/tools/mcp/mcptest"
)

// redirectURL is where the test's authorization server sends the browser
// back; nothing listens there: the test reads the redirect's Location.
const redirectURL = "http://127.0.0.1:1/callback"

func newAuthorizer(t *testing.T, srv *mcptest.OAuthServer, store mcp.TokenStore, cfg mcp.OAuthConfig) *mcp.Authorizer {
	t.Helper()
	cfg.Server, cfg.RedirectURL, cfg.Store = srv.URL, redirectURL, store
	a, err := mcp.NewAuthorizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// browse plays the user's browser: it opens the authorization URL and
// returns the query of the redirect the authorization server answers.
func browse(t *testing.T, authURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirectURL) {
		t.Fatalf("authorization answered %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func addOnce(t *testing.T, s *mcp.Server) string {
	t.Helper()
	res, err := find(t, s, "add").Invoke(context.Background(), infinity.ToolEnv{}, infinity.ToolCall{ID: "c1", Name: "add", Args: []byte(`{"a":2,"b":3}`)})
	if err != nil || res.IsError {
		t.Fatalf("add: %v %+v", err, res)
	}
	return res.Parts[0].Text
}

// The authorization flow against a real authorization server, with
// dynamic client registration: the first connect fails at once with
// ErrAuthorizationRequired and the URL is in State; the redirect completes
// it (PKCE, exchange); the tokens are kept in a 0600 file; the next
// connect and its calls work; a replayed state is refused; a new
// authorizer over the same file connects without asking again.
func TestOAuthFlow(t *testing.T) {
	srv := mcptest.StartOAuth(mcptest.OAuthOptions{Scopes: []string{"notes.read"}})
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "tokens", "notes.json")
	store := mcp.FileTokenStore{Path: path}
	changed := make(chan struct{}, 16)
	a := newAuthorizer(t, srv, store, mcp.OAuthConfig{OnChange: func() { changed <- struct{}{} }})

	_, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(a))
	if !errors.Is(err, mcp.ErrAuthorizationRequired) {
		t.Fatalf("first connect: %v, want ErrAuthorizationRequired", err)
	}
	st := a.State()
	if st.URL == "" || st.Authorized || time.Until(st.Expires) < 29*time.Minute {
		t.Fatalf("state %+v", st)
	}
	// A second connect does not start a second authorization.
	if _, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(a)); !errors.Is(err, mcp.ErrAuthorizationRequired) || a.State().URL != st.URL {
		t.Fatalf("second connect: %v; URL %q then %q", err, st.URL, a.State().URL)
	}
	if c := srv.Counts(); c.Registrations != 1 {
		t.Fatalf("counts %+v", c)
	}

	q := browse(t, st.URL)
	if bad := (url.Values{"code": {q.Get("code")}, "state": {"forged"}}); !errors.Is(a.Complete(t.Context(), bad), mcp.ErrUnknownState) {
		t.Fatal("a forged state was accepted")
	}
	if err := a.Complete(t.Context(), q); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if err := a.Complete(t.Context(), q); !errors.Is(err, mcp.ErrUnknownState) {
		t.Fatalf("replayed state: %v, want ErrUnknownState", err)
	}
	if st := a.State(); !st.Authorized || st.NeedsUser() {
		t.Fatalf("state after the redirect: %+v", st)
	}
	if srv.Scope() != "notes.read" {
		t.Errorf("scope asked for: %q", srv.Scope())
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("OnChange was not called")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file: %v %v", fi, err)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("tokens directory: %v %v", di, err)
	}

	s := connect(t, srv.URL, mcp.WithOAuth(a))
	if got := addOnce(t, s); got != "5" {
		t.Fatalf("add = %q", got)
	}

	// Another authorizer over the same file (a restart) needs no user.
	b := newAuthorizer(t, srv, store, mcp.OAuthConfig{})
	if !b.State().Authorized {
		t.Fatalf("state from the file: %+v", b.State())
	}
	s2 := connect(t, srv.URL, mcp.WithOAuth(b))
	addOnce(t, s2)
	if c := srv.Counts(); c.Authorizations != 1 || c.Exchanges != 1 {
		t.Fatalf("counts %+v: want one authorization", c)
	}
}

// Expired access tokens are refreshed (refresh_token grant, rotating) and
// the refreshed ones kept, so that another authorizer over the file goes
// on with them; a preregistered client with a secret works; the user's
// refusal at the authorization server fails the authorization, and the
// next connect starts a new one.
func TestOAuthRefreshAndPreregistered(t *testing.T) {
	srv := mcptest.StartOAuth(mcptest.OAuthOptions{TokenTTL: time.Second, ClientID: "pre", ClientSecret: "pre-secret"})
	t.Cleanup(srv.Close)
	store := mcp.FileTokenStore{Path: filepath.Join(t.TempDir(), "t.json")}
	a := newAuthorizer(t, srv, store, mcp.OAuthConfig{ClientID: "pre", ClientSecret: "pre-secret", Scopes: []string{"a", "b"}})

	// Refused by the user first.
	if _, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(a)); !errors.Is(err, mcp.ErrAuthorizationRequired) {
		t.Fatalf("connect: %v", err)
	}
	q := browse(t, a.State().URL)
	denied := url.Values{"state": {q.Get("state")}, "error": {"access_denied"}, "error_description": {"no\x1b[2J thanks"}}
	if err := a.Complete(t.Context(), denied); !errors.Is(err, mcp.ErrAuthorizationFailed) || !strings.Contains(err.Error(), `"access_denied": no[2J thanks`) {
		t.Fatalf("denied: %v", err) // without the terminal's escape
	}
	if st := a.State(); st.Authorized || !errors.Is(st.Err, mcp.ErrAuthorizationFailed) || !st.NeedsUser() {
		t.Fatalf("state after the refusal: %+v", st)
	}
	if _, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(a)); !errors.Is(err, mcp.ErrAuthorizationRequired) {
		t.Fatalf("connect after the refusal: %v", err)
	}
	if err := a.Complete(t.Context(), browse(t, a.State().URL)); err != nil {
		t.Fatal(err)
	}
	scopes := strings.Fields(srv.Scope())
	slices.Sort(scopes) // a set: the order of its words means nothing
	if srv.Counts().Registrations != 0 || strings.Join(scopes, " ") != "a b" {
		t.Fatalf("counts %+v scope %q", srv.Counts(), srv.Scope())
	}
	first, err := store.Load()
	if err != nil || first == nil || first.Token.RefreshToken == "" || first.ClientSecret != "pre-secret" {
		t.Fatalf("stored: %+v %v", first, err)
	}

	s := connect(t, srv.URL, mcp.WithOAuth(a))
	time.Sleep(1100 * time.Millisecond) // past the access token's lifetime
	addOnce(t, s)
	if srv.Counts().Refreshes == 0 {
		t.Fatalf("no refresh: %+v", srv.Counts())
	}
	now, err := store.Load()
	if err != nil || now.Token.RefreshToken == first.Token.RefreshToken || now.Token.AccessToken == first.Token.AccessToken {
		t.Fatalf("the refreshed tokens were not kept: %v", err)
	}
	// The old refresh token was rotated away: a restart must use the new one.
	b := newAuthorizer(t, srv, store, mcp.OAuthConfig{ClientID: "pre", ClientSecret: "pre-secret"})
	time.Sleep(1100 * time.Millisecond)
	addOnce(t, connect(t, srv.URL, mcp.WithOAuth(b)))
	if c := srv.Counts(); c.Authorizations != 2 {
		t.Fatalf("counts %+v", c)
	}

	// The authorization server forgets the grant: the refresh is refused
	// (invalid_grant), and the next connection asks the user again.
	srv.Revoke()
	time.Sleep(1100 * time.Millisecond)
	if _, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(b)); !errors.Is(err, mcp.ErrAuthorizationRequired) {
		t.Fatalf("connect with a revoked grant: %v", err)
	}
	if st := b.State(); !st.NeedsUser() || st.URL == "" {
		t.Fatalf("state after the revocation: %+v", st)
	}
}

// A step-up (403 insufficient_scope) asks for the configured scopes and
// those the challenge names, so that the new token has them; and once the
// user granted what a challenge named, the same challenge again fails the
// request (ErrScopeRefused) instead of asking the user for ever.
func TestOAuthStepUp(t *testing.T) {
	srv := mcptest.StartOAuth(mcptest.OAuthOptions{})
	t.Cleanup(srv.Close)
	a := newAuthorizer(t, srv, mcp.FileTokenStore{Path: filepath.Join(t.TempDir(), "t.json")}, mcp.OAuthConfig{Scopes: []string{"a"}})
	authorize := func(what string) {
		t.Helper()
		st := a.State()
		if st.URL == "" {
			t.Fatalf("%s: no authorization URL: %+v", what, st)
		}
		if err := a.Complete(t.Context(), browse(t, st.URL)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	scope := func() string {
		s := strings.Fields(srv.Scope())
		slices.Sort(s)
		return strings.Join(s, " ")
	}

	if _, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(a)); !errors.Is(err, mcp.ErrAuthorizationRequired) {
		t.Fatalf("connect: %v", err)
	}
	authorize("first")
	if scope() != "a" {
		t.Fatalf("first authorization asked for %q", srv.Scope())
	}
	srv.RequireScope("b")
	if _, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(a)); !errors.Is(err, mcp.ErrAuthorizationRequired) {
		t.Fatalf("connect wanting scope b: %v", err)
	}
	authorize("step-up")
	if scope() != "a b" {
		t.Fatalf("the step-up asked for %q, want a and b", srv.Scope())
	}
	addOnce(t, connect(t, srv.URL, mcp.WithOAuth(a)))

	// The user leaves c out, though the server wants it.
	srv.RequireScope("c")
	srv.Withhold("c")
	if _, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(a)); !errors.Is(err, mcp.ErrAuthorizationRequired) {
		t.Fatalf("connect wanting scope c: %v", err)
	}
	authorize("step-up to c")
	n := srv.Counts().Authorizations
	for range 3 {
		_, err := mcp.Connect(t.Context(), srv.URL, mcp.WithOAuth(a))
		if !errors.Is(err, mcp.ErrScopeRefused) || errors.Is(err, mcp.ErrAuthorizationRequired) {
			t.Fatalf("connect after c was withheld: %v, want ErrScopeRefused", err)
		}
	}
	if st := a.State(); st.URL != "" || st.NeedsUser() || srv.Counts().Authorizations != n {
		t.Fatalf("the user is asked again: %+v, %d authorizations (%d before)", st, srv.Counts().Authorizations, n)
	}
}

// A tokens file found with a looser mode (copied in, restored) is made
// 0600 when it is read.
func TestFileTokenStoreTightensMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.json")
	if err := os.WriteFile(path, []byte(`{"server":"s","token":{"access_token":"x"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	rec, err := mcp.FileTokenStore{Path: path}.Load()
	if err != nil || rec == nil || rec.Server != "s" {
		t.Fatalf("load: %+v %v", rec, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file after load: %v %v", fi, err)
	}
}
