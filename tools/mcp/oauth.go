package mcp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// DefaultAuthorizationExpiry is how long an authorization URL stays valid:
// the redirect must come back within it.
const DefaultAuthorizationExpiry = 30 * time.Minute

// clientName is the client's name in a dynamic registration.
const clientName = "infinity"

// Errors of the authorization flow.
var (
	// ErrAuthorizationRequired is wrapped by the errors of Connect (and of
	// calls) when the server wants the user's authorization and an
	// authorization waits for the user to open its URL (Authorizer.State).
	ErrAuthorizationRequired = errors.New("the user's authorization is required")
	// ErrUnknownState is returned by Authorizer.Complete for a redirect
	// whose state names no authorization that waits: unknown, already
	// used or expired.
	ErrUnknownState = errors.New("no authorization waits for this state: it is unknown, already used or expired")
	// ErrAuthorizationFailed is wrapped by Authorizer.Complete's error,
	// and is State().Err's, when an authorization ended without tokens
	// (refused by the user or the authorization server, expired, or the
	// token exchange failed).
	ErrAuthorizationFailed = errors.New("authorization failed")
	// ErrScopeRefused is wrapped by the error of a request that the
	// server refused for insufficient scope (403) right after an
	// authorization granted the very scopes it named: asking the user
	// again would not help, so no new authorization starts.
	ErrScopeRefused = errors.New("the server refuses the scopes the user granted")
)

// OAuthConfig configures an Authorizer.
type OAuthConfig struct {
	// Server is the MCP server's URL (the protected resource).
	Server string
	// Name names the server in errors (default Server).
	Name string
	// ClientID is a client registered beforehand with the authorization
	// server; empty: the client registers itself (RFC 7591 dynamic
	// client registration) at each authorization.
	ClientID string
	// ClientSecret is ClientID's secret, for a confidential client.
	ClientSecret string
	// Scopes replace the scopes the server asks for, when set.
	Scopes []string
	// RedirectURL is where the authorization server sends the user's
	// browser back (Complete must then be called with its query).
	RedirectURL string
	// Store keeps the tokens (and what refreshing them needs); required.
	Store TokenStore
	// HTTPClient sends discovery, registration and token requests
	// (default a client with a 30 s timeout).
	HTTPClient *http.Client
	// OnChange, when set, is called (on its own goroutine) after the
	// state changed: an authorization URL is ready, tokens were obtained,
	// or an authorization failed.
	OnChange func()
	// Log receives failures to keep refreshed tokens (default
	// slog.Default()). Tokens are never logged.
	Log *slog.Logger
}

// StoredAuth is what a TokenStore keeps: the tokens and what refreshing
// them needs.
type StoredAuth struct {
	// Server is the MCP server the tokens are for.
	Server       string `json:"server"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// TokenURL is the authorization server's token endpoint.
	TokenURL  string           `json:"token_url"`
	AuthStyle oauth2.AuthStyle `json:"auth_style,omitempty"`
	// Resource is the resource indicator (RFC 8707) the tokens were
	// granted for, sent again with each refresh.
	Resource string        `json:"resource,omitempty"`
	Scopes   []string      `json:"scopes,omitempty"`
	Token    *oauth2.Token `json:"token"`
}

// TokenStore keeps one server's tokens.
type TokenStore interface {
	// Load returns the stored tokens, or nil without any.
	Load() (*StoredAuth, error)
	// Save replaces them.
	Save(*StoredAuth) error
}

// AuthState is where an Authorizer stands.
type AuthState struct {
	// Authorized: it holds tokens and no authorization waits.
	Authorized bool
	// URL is the authorization URL the user must open, while one waits;
	// Expires is when it stops being valid.
	URL     string
	Expires time.Time
	// Err says why the last authorization failed (wrapping
	// ErrAuthorizationFailed), when none waits.
	Err error
}

// NeedsUser reports whether the user must act: open URL, or (after a
// failure) the one the next connection attempt makes.
func (s AuthState) NeedsUser() bool { return s.URL != "" || s.Err != nil }

// Authorizer runs MCP's authorization flow (OAuth 2.1 authorization code
// with PKCE; the go-sdk's auth.AuthorizationCodeHandler does discovery,
// registration, PKCE and the exchange) for one remote server, without
// blocking the connection that needs it: when the server answers 401, an
// authorization starts in the background and the connection fails at once
// with ErrAuthorizationRequired; its URL is in State until the redirect
// comes back (Complete) or it expires. Tokens are kept in the Store and
// refreshed when they expire (golang.org/x/oauth2), the refreshed ones
// kept too. It is an auth.OAuthHandler (WithOAuth) and safe for
// concurrent use; one Authorizer may serve many connections.
type Authorizer struct {
	cfg OAuthConfig
	h   *auth.AuthorizationCodeHandler

	ctx    context.Context // ends the flows on Close
	cancel context.CancelFunc

	mu     sync.Mutex
	flow   *flow // the authorization that waits, or nil
	failed error // why the last one failed
	tokens bool  // a token source is set
	// steppedUp are the scopes (sorted, space-separated) that the last
	// successful step-up authorization was for ("" after any other).
	steppedUp string
}

// flow is one authorization under way.
type flow struct {
	state, url string
	resource   string // the authorization request's resource (RFC 8707)
	stepUp     string // a step-up (403 insufficient_scope): the scopes it names, sorted
	expires    time.Time
	answered   bool
	result     chan callback // the redirect's answer
	published  chan struct{} // closed when url is set or the flow ended
	pubOnce    sync.Once
	done       chan struct{} // closed when the flow ended; err is then set
	err        error
}

type callback struct {
	code, state, iss string
	err              error
}

type flowKey struct{}

// NewAuthorizer returns an authorizer that starts from the tokens of
// cfg.Store, if any.
func NewAuthorizer(cfg OAuthConfig) (*Authorizer, error) {
	if cfg.Store == nil || cfg.Server == "" || cfg.RedirectURL == "" {
		return nil, errors.New("mcp: OAuthConfig needs Server, RedirectURL and Store")
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Server
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &Authorizer{cfg: cfg}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	hc := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL:              cfg.RedirectURL,
		AuthorizationCodeFetcher: a.fetch,
		RequestRefreshToken:      true,
		Client:                   cfg.HTTPClient,
		NewTokenSource:           a.newTokenSource,
	}
	if cfg.ClientID != "" {
		pre := &oauthex.ClientCredentials{ClientID: cfg.ClientID}
		if cfg.ClientSecret != "" {
			pre.ClientSecretAuth = &oauthex.ClientSecretAuth{ClientSecret: cfg.ClientSecret}
		}
		hc.PreregisteredClient = pre
	} else {
		hc.DynamicClientRegistrationConfig = &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			RedirectURIs: []string{cfg.RedirectURL}, ClientName: clientName, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		}}
	}
	if len(cfg.Scopes) > 0 {
		a.cfg.Scopes = slices.Clone(cfg.Scopes)
		hc.ScopeFilter = a.scopes
	}
	stored, err := cfg.Store.Load()
	if err != nil {
		return nil, fmt.Errorf("mcp: tokens of %s: %w", cfg.Name, err)
	}
	if stored != nil && stored.Token != nil && stored.Server == cfg.Server {
		oc := &oauth2.Config{ClientID: stored.ClientID, ClientSecret: stored.ClientSecret, Scopes: stored.Scopes,
			Endpoint: oauth2.Endpoint{TokenURL: stored.TokenURL, AuthStyle: stored.AuthStyle}}
		hc.InitialTokenSource = a.saving(a.refreshContext(), oc, stored.Token, stored.Resource)
		a.tokens = true
	}
	h, err := auth.NewAuthorizationCodeHandler(hc)
	if err != nil {
		return nil, fmt.Errorf("mcp: authorization of %s: %w", cfg.Name, err)
	}
	a.h = h
	return a, nil
}

// refreshContext carries the HTTP client to the token refreshes.
func (a *Authorizer) refreshContext() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, a.cfg.HTTPClient)
}

// Close ends the authorization that waits, if any.
func (a *Authorizer) Close() { a.cancel() }

// State says where the authorizer stands.
func (a *Authorizer) State() AuthState {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.flow; f != nil {
		if f.url != "" {
			return AuthState{URL: f.url, Expires: f.expires}
		}
		return AuthState{} // discovering and registering: no URL yet
	}
	return AuthState{Authorized: a.tokens && a.failed == nil, Err: a.failed}
}

// TokenSource returns the source of the tokens to send (nil before any).
func (a *Authorizer) TokenSource(ctx context.Context) (oauth2.TokenSource, error) {
	return a.h.TokenSource(ctx)
}

// Authorize is called by the transport when the server answered 401 (or
// 403 insufficient_scope): it starts an authorization in the background,
// unless one waits already, and returns ErrAuthorizationRequired once its
// URL is known (or the error that ended it before).
func (a *Authorizer) Authorize(ctx context.Context, req *http.Request, resp *http.Response) error {
	status, hdr := resp.StatusCode, resp.Header.Clone()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	stepUp := ""
	if status == http.StatusForbidden {
		scopes, ok := insufficientScope(hdr)
		if !ok {
			return nil // not an authorization matter: the retried request fails as it is
		}
		stepUp = scopes
		a.mu.Lock()
		again := a.flow == nil && a.steppedUp != "" && a.steppedUp == scopes
		a.mu.Unlock()
		if again {
			// The user just granted these: another authorization would
			// end the same way, and the user would be asked forever.
			return fmt.Errorf("MCP server %s: %w (%s)", a.cfg.Name, ErrScopeRefused, scopes)
		}
	}
	f := a.start(req.URL, status, hdr, stepUp)
	select {
	case <-f.published:
	case <-ctx.Done():
		return fmt.Errorf("MCP server %s needs authorization: %w", a.cfg.Name, ctx.Err())
	}
	return a.pending(f)
}

// Pending returns ErrAuthorizationRequired (wrapped) while an
// authorization waits for the user, nil otherwise.
func (a *Authorizer) Pending() error {
	a.mu.Lock()
	f := a.flow
	a.mu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.published:
		return a.pending(f)
	default:
		return nil
	}
}

// pending is the error of a connection that found f under way (or ended).
func (a *Authorizer) pending(f *flow) error {
	select {
	case <-f.done:
		if f.err != nil {
			return f.err
		}
		return nil // authorized meanwhile: the transport retries
	default:
	}
	return fmt.Errorf("%w: an authorization URL waits to be opened", ErrAuthorizationRequired)
}

// insufficientScope reports whether h challenges with insufficient_scope,
// and the scopes the challenge names (sorted, space-separated; "*" when it
// names none).
func insufficientScope(h http.Header) (string, bool) {
	cs, err := oauthex.ParseWWWAuthenticate(h.Values("WWW-Authenticate"))
	if err != nil {
		return "", false
	}
	i := slices.IndexFunc(cs, func(c oauthex.Challenge) bool {
		return c.Scheme == "bearer" && c.Params["error"] == "insufficient_scope"
	})
	if i < 0 {
		return "", false
	}
	scopes := strings.Fields(cs[i].Params["scope"])
	if len(scopes) == 0 {
		return "*", true
	}
	slices.Sort(scopes)
	return strings.Join(slices.Compact(scopes), " "), true
}

// scopes is the handler's ScopeFilter when OAuthConfig.Scopes are set:
// they replace the scopes the server names, except in a step-up, which
// asks for them and the scopes the server's challenge names.
func (a *Authorizer) scopes(discovered []string) []string {
	out := slices.Clone(a.cfg.Scopes)
	a.mu.Lock()
	stepUp := a.flow != nil && a.flow.stepUp != ""
	a.mu.Unlock()
	if stepUp {
		for _, s := range discovered {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// start returns the flow that waits, starting one if none does.
func (a *Authorizer) start(u *url.URL, status int, hdr http.Header, stepUp string) *flow {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.flow != nil {
		return a.flow
	}
	f := &flow{stepUp: stepUp, result: make(chan callback, 1), published: make(chan struct{}), done: make(chan struct{})}
	a.flow, a.failed = f, nil
	target := *u
	req := &http.Request{Method: http.MethodPost, URL: &target, Header: http.Header{}}
	resp := &http.Response{StatusCode: status, Header: hdr, Body: io.NopCloser(strings.NewReader(""))}
	ctx, cancel := context.WithTimeout(context.WithValue(a.ctx, flowKey{}, f), DefaultAuthorizationExpiry)
	go func() {
		defer cancel()
		err := a.h.Authorize(ctx, req, resp)
		a.finish(f, err)
	}()
	return f
}

// finish ends a flow with the outcome of the handler's Authorize.
func (a *Authorizer) finish(f *flow, err error) {
	if err != nil {
		err = fmt.Errorf("MCP server %s: %w: %w", a.cfg.Name, ErrAuthorizationFailed, err)
	}
	a.mu.Lock()
	f.err = err
	if a.flow == f {
		a.flow = nil
	}
	if err != nil {
		a.failed = err
	} else {
		a.failed, a.tokens, a.steppedUp = nil, true, f.stepUp
	}
	a.mu.Unlock()
	close(f.done)
	f.pubOnce.Do(func() { close(f.published) })
	a.changed()
}

func (a *Authorizer) changed() {
	if a.cfg.OnChange != nil {
		go a.cfg.OnChange()
	}
}

// fetch is the handler's AuthorizationCodeFetcher: it publishes the URL
// and waits for the redirect (Complete) or the flow's end.
func (a *Authorizer) fetch(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	f, _ := ctx.Value(flowKey{}).(*flow)
	if f == nil {
		return nil, errors.New("authorization outside a flow")
	}
	u, err := url.Parse(args.URL)
	if err != nil {
		return nil, fmt.Errorf("authorization URL: %w", err)
	}
	deadline, _ := ctx.Deadline()
	a.mu.Lock()
	f.state, f.url, f.expires, f.resource = u.Query().Get("state"), args.URL, deadline, u.Query().Get("resource")
	a.mu.Unlock()
	f.pubOnce.Do(func() { close(f.published) })
	a.changed()
	select {
	case cb := <-f.result:
		if cb.err != nil {
			return nil, cb.err
		}
		return &auth.AuthorizationResult{Code: cb.code, State: cb.state, Iss: cb.iss}, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("its URL was not used within %s", DefaultAuthorizationExpiry)
		}
		return nil, ctx.Err()
	}
}

// Complete hands an authorization response (the query of the redirect to
// RedirectURL) to the authorization that waits with its state, and waits
// until that authorization ended (the code exchanged, the tokens stored)
// or ctx does. It returns ErrUnknownState when no authorization of this
// authorizer waits with that state (a state is good for one response), and
// an error wrapping ErrAuthorizationFailed when the authorization server
// refused or the exchange failed.
func (a *Authorizer) Complete(ctx context.Context, q url.Values) error {
	state := q.Get("state")
	a.mu.Lock()
	f := a.flow
	if f == nil || f.state == "" || f.answered || subtle.ConstantTimeCompare([]byte(f.state), []byte(state)) != 1 {
		a.mu.Unlock()
		return ErrUnknownState
	}
	f.answered = true
	a.mu.Unlock()
	cb := callback{code: q.Get("code"), state: state, iss: q.Get("iss")}
	switch e := q.Get("error"); {
	case e != "":
		// Shown on the threads (infinity ls): no terminal controls from
		// whoever sent the browser back.
		desc := strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, q.Get("error_description"))
		if desc != "" {
			desc = ": " + desc
		}
		cb.err = fmt.Errorf("the authorization server answered %q%s", e, desc)
	case cb.code == "":
		cb.err = errors.New("the redirect carries no code")
	}
	f.result <- cb
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("MCP server %s: waiting for the token exchange: %w", a.cfg.Name, ctx.Err())
	}
}

// newTokenSource keeps the tokens of a finished authorization, and
// returns a source that refreshes them and keeps the refreshed ones.
func (a *Authorizer) newTokenSource(ctx context.Context, oc *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
	// Called within the flow's Authorize: a.flow is that flow.
	a.mu.Lock()
	var resource string
	if a.flow != nil {
		resource = a.flow.resource
	}
	a.mu.Unlock()
	ts := a.saving(ctx, oc, tok, resource)
	if err := ts.save(tok); err != nil {
		return nil, err
	}
	return ts, nil
}

func (a *Authorizer) saving(ctx context.Context, oc *oauth2.Config, tok *oauth2.Token, resource string) *savingSource {
	if resource != "" {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, withResource(ctx, a.cfg.HTTPClient, oc.Endpoint.TokenURL, resource))
	}
	return &savingSource{a: a, base: oc.TokenSource(ctx, tok), last: tok.AccessToken,
		rec: StoredAuth{Server: a.cfg.Server, ClientID: oc.ClientID, ClientSecret: oc.ClientSecret,
			TokenURL: oc.Endpoint.TokenURL, AuthStyle: oc.Endpoint.AuthStyle, Scopes: slices.Clone(oc.Scopes), Resource: resource}}
}

// withResource returns ctx's HTTP client (or def) adding the resource
// parameter (RFC 8707) to the refresh_token requests it sends to tokenURL:
// MCP wants it in every token request, and golang.org/x/oauth2 sends none
// when it refreshes.
func withResource(ctx context.Context, def *http.Client, tokenURL, resource string) *http.Client {
	base, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if base == nil {
		base = def
	}
	c := *base
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = resourceTransport{next: next, tokenURL: tokenURL, resource: resource}
	return &c
}

type resourceTransport struct {
	next               http.RoundTripper
	tokenURL, resource string
}

func (t resourceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.Body == nil || req.URL.String() != t.tokenURL {
		return t.next.RoundTrip(req)
	}
	b, err := io.ReadAll(req.Body) // oauth2's own small form
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the token request: %w", err)
	}
	form, err := url.ParseQuery(string(b))
	if err == nil && form.Get("grant_type") == "refresh_token" && !form.Has("resource") {
		form.Set("resource", t.resource)
		b = []byte(form.Encode())
	}
	r := req.Clone(req.Context())
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader(string(b))), int64(len(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(b))), nil }
	return t.next.RoundTrip(r)
}

// savingSource is a refreshing token source that keeps each new token.
type savingSource struct {
	a    *Authorizer
	base oauth2.TokenSource

	mu   sync.Mutex
	last string // the access token kept last
	rec  StoredAuth
}

func (s *savingSource) Token() (*oauth2.Token, error) {
	// Held across the refresh too: a token got before another caller's
	// refresh must not be kept after that one's (its refresh token may be
	// rotated away already).
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, err := s.base.Token()
	if err != nil {
		return nil, fmt.Errorf("MCP server %s: refresh the access token: %w", s.a.cfg.Name, err)
	}
	if tok.AccessToken != s.last {
		if err := s.saveLocked(tok); err != nil {
			// The token works now; a restart would need the new refresh token.
			s.a.cfg.Log.Error("refreshed MCP tokens not kept", LogKey, s.a.cfg.Name, "err", err)
		} else {
			s.last = tok.AccessToken
		}
	}
	return tok, nil
}

func (s *savingSource) save(tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(tok)
}

func (s *savingSource) saveLocked(tok *oauth2.Token) error {
	rec := s.rec
	rec.Token = tok
	if err := s.a.cfg.Store.Save(&rec); err != nil {
		return fmt.Errorf("MCP server %s: keep the tokens: %w", s.a.cfg.Name, err)
	}
	return nil
}

// WithOAuth authorizes the requests to a remote server with a's tokens,
// and has a start an authorization when the server wants one (Connect
// then fails at once with ErrAuthorizationRequired).
func WithOAuth(a *Authorizer) Option {
	return func(o *options) { o.oauth = a }
}
