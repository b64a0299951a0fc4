package mcptest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// OAuthOptions shape an OAuth-protected server (StartOAuth).
type OAuthOptions struct {
	// Options shape its MCP server (Headers is ignored).
	Options
	// TokenTTL is the lifetime of an access token it issues (default one
	// hour); the MCP server refuses a token past it.
	TokenTTL time.Duration
	// ClientID and ClientSecret, when set, are a client registered
	// beforehand (with any redirect URI); without ClientID, clients
	// register themselves (RFC 7591, at /register).
	ClientID, ClientSecret string
	// Scopes are the scopes the server asks for (in its protected
	// resource metadata).
	Scopes []string
}

// OAuthServer is an MCP server that wants OAuth 2.1 bearer tokens, beside
// its own authorization server, both on loopback: the MCP server at URL
// answers 401 with WWW-Authenticate naming its protected resource
// metadata (RFC 9728); the authorization server at Issuer serves its
// metadata (RFC 8414), /authorize (which grants at once, as a user who
// clicks "allow" would, after checking the client, the redirect URI and
// the PKCE challenge), /token (authorization_code with the PKCE verifier,
// refresh_token, rotating both tokens; each checks the resource parameter,
// RFC 8707) and /register (RFC 7591).
type OAuthServer struct {
	// URL is the MCP endpoint.
	URL string
	// Issuer is the authorization server's URL.
	Issuer string

	o          OAuthOptions
	mcp        *httptest.Server
	as         *httptest.Server
	mcpHandler http.Handler

	mu       sync.Mutex
	clients  map[string]oauthClient // by client id
	codes    map[string]oauthCode   // by code
	access   map[string]grant       // by access token
	refresh  map[string]grant       // by refresh token
	counts   OAuthCounts
	lastAuth string // the scope of the last authorization request
	required string // a scope the MCP server wants (RequireScope)
	withheld string // a scope the authorization server never grants (Withhold)
}

// grant is what a token stands for.
type grant struct {
	client, scope string
	expires       time.Time // an access token's
}

// OAuthCounts counts what the authorization server did.
type OAuthCounts struct {
	// Registrations are clients registered at /register.
	Registrations int
	// Authorizations are codes issued at /authorize.
	Authorizations int
	// Exchanges are codes exchanged for tokens.
	Exchanges int
	// Refreshes are refresh_token grants served.
	Refreshes int
	// Refused are requests with a missing, unknown or expired bearer
	// token that the MCP server answered 401.
	Refused int
}

type oauthClient struct {
	secret   string
	redirect []string // empty: any (a client registered beforehand)
}

type oauthCode struct {
	client, redirect, challenge, resource, scope string
	expires                                      time.Time
}

// StartOAuth serves an OAuth-protected MCP server and its authorization
// server.
func StartOAuth(o OAuthOptions) *OAuthServer {
	if o.Name == "" {
		o.Name = "mcptest"
	}
	if o.Slow <= 0 {
		o.Slow = 2 * time.Second
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	s := &OAuthServer{o: o, clients: map[string]oauthClient{}, codes: map[string]oauthCode{},
		access: map[string]grant{}, refresh: map[string]grant{}}
	if o.ClientID != "" {
		s.clients[o.ClientID] = oauthClient{secret: o.ClientSecret}
	}
	srv := newServer(o.Options)
	s.mcpHandler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	as := http.NewServeMux()
	as.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	as.HandleFunc("GET /authorize", s.authorize)
	as.HandleFunc("POST /token", s.token)
	as.HandleFunc("POST /register", s.register)
	s.as = httptest.NewServer(as)
	s.Issuer = s.as.URL
	rs := http.NewServeMux()
	rs.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", s.resourceMetadata)
	rs.HandleFunc("/mcp", s.serveMCP)
	s.mcp = httptest.NewServer(rs)
	s.URL = s.mcp.URL + "/mcp"
	return s
}

// Close stops both servers.
func (s *OAuthServer) Close() {
	s.mcp.Close()
	s.as.Close()
}

// Counts returns what the authorization server did so far.
func (s *OAuthServer) Counts() OAuthCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Scope returns the scope parameter of the last authorization request.
func (s *OAuthServer) Scope() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAuth
}

// RequireScope has the MCP server refuse a token not granted scope with
// 403 insufficient_scope, naming it in its challenge (a step-up).
func (s *OAuthServer) RequireScope(scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.required = scope
}

// Withhold has the authorization server leave scope out of what it
// grants, as a user who unticks it would.
func (s *OAuthServer) Withhold(scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.withheld = scope
}

// Revoke forgets every token issued so far: the next request with one is
// refused and the next refresh fails (invalid_grant).
func (s *OAuthServer) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
	clear(s.refresh)
}

func (s *OAuthServer) serveMCP(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	g, known := s.access[tok]
	valid := ok && known && time.Now().Before(g.expires)
	if !valid {
		s.counts.Refused++
	}
	required := s.required
	s.mu.Unlock()
	metadata := `resource_metadata="` + s.mcp.URL + `/.well-known/oauth-protected-resource/mcp"`
	if !valid {
		w.Header().Set("WWW-Authenticate", "Bearer "+metadata)
		http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
		return
	}
	if required != "" && !slices.Contains(strings.Fields(g.scope), required) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+required+`", `+metadata)
		http.Error(w, "the token lacks scope "+required, http.StatusForbidden)
		return
	}
	s.mcpHandler.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *OAuthServer) resourceMetadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"resource": s.URL, "authorization_servers": []string{s.Issuer},
		"scopes_supported": s.o.Scopes, "bearer_methods_supported": []string{"header"}})
}

func (s *OAuthServer) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": s.Issuer, "authorization_endpoint": s.Issuer + "/authorize", "token_endpoint": s.Issuer + "/token",
		"registration_endpoint": s.Issuer + "/register", "response_types_supported": []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_post", "client_secret_basic"},
	})
}

func (s *OAuthServer) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RedirectURIs []string `json:"redirect_uris"`
		ClientName   string   `json:"client_name"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || len(req.RedirectURIs) == 0 {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "redirect_uris are required")
		return
	}
	id := "client-" + rand.Text()
	s.mu.Lock()
	s.clients[id] = oauthClient{redirect: req.RedirectURIs}
	s.counts.Registrations++
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"client_id": id, "redirect_uris": req.RedirectURIs,
		"client_name": req.ClientName, "token_endpoint_auth_method": "none"})
}

// authorize grants at once: the user said yes. Errors that cannot be
// sent back to a trusted redirect URI are answered here, as RFC 6749
// §4.1.2.1 says.
func (s *OAuthServer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[q.Get("client_id")]
	redirect := q.Get("redirect_uri")
	switch {
	case !ok:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case redirect == "" || len(c.redirect) > 0 && !slices.Contains(c.redirect, redirect):
		http.Error(w, "redirect_uri is not registered", http.StatusBadRequest)
		return
	}
	back, err := url.Parse(redirect)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	bq := back.Query()
	bq.Set("state", q.Get("state"))
	switch {
	case q.Get("response_type") != "code":
		bq.Set("error", "unsupported_response_type")
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		bq.Set("error", "invalid_request")
		bq.Set("error_description", "PKCE with S256 is required")
	case q.Get("resource") != s.URL:
		bq.Set("error", "invalid_target")
	default:
		code := rand.Text()
		granted := slices.DeleteFunc(strings.Fields(q.Get("scope")), func(sc string) bool { return sc == s.withheld })
		s.codes[code] = oauthCode{client: q.Get("client_id"), redirect: redirect, challenge: q.Get("code_challenge"),
			resource: q.Get("resource"), scope: strings.Join(granted, " "), expires: time.Now().Add(time.Minute)}
		s.counts.Authorizations++
		s.lastAuth = q.Get("scope")
		bq.Set("code", code)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (s *OAuthServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.secret != secret {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	var scope string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code")) // single use
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok || time.Now().After(code.expires) || code.client != id:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
			return
		case code.redirect != r.PostForm.Get("redirect_uri"):
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != code.challenge:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the PKCE verifier does not match")
			return
		case r.PostForm.Get("resource") != code.resource:
			// RFC 8707 §2.2; MCP wants it in every token request.
			oauthError(w, http.StatusBadRequest, "invalid_target", "resource differs from the authorization request's")
			return
		}
		s.counts.Exchanges++
		scope = code.scope
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		g, ok := s.refresh[rt]
		switch {
		case !ok || g.client != id:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
			return
		case r.PostForm.Get("resource") != s.URL:
			oauthError(w, http.StatusBadRequest, "invalid_target", "a refresh must name the resource (RFC 8707)")
			return
		}
		delete(s.refresh, rt) // rotated
		s.counts.Refreshes++
		scope = g.scope
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	access, refresh := "at-"+rand.Text(), "rt-"+rand.Text()
	s.access[access] = grant{client: id, scope: scope, expires: time.Now().Add(s.o.TokenTTL)}
	s.refresh[refresh] = grant{client: id, scope: scope}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer",
		"expires_in": int(s.o.TokenTTL.Seconds()), "refresh_token": refresh, "scope": scope})
}
