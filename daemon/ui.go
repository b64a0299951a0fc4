package daemon

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The web UI: static files embedded in the binary (no build step, nothing
// fetched from elsewhere), served under /ui/, reading the same API as the
// CLI.
//
// Auth keeps the API's guarantees without putting the bearer token in a
// URL: "infinity ui" asks the daemon (with the token) for a one-time code
// and opens /ui/login?code=...; the daemon spends the code, sets an
// HttpOnly, SameSite=Strict session cookie, and redirects to /ui/ with the
// session's key in the URL's fragment (never sent to a server), which the
// page moves into its origin's storage and removes from the address bar.
// A cookie request is let through only with that key in the
// X-Infinity-CSRF header (or, for an EventSource, which cannot set one,
// the csrf query parameter): browsers send a host's cookies to every port
// of it, so the cookie alone must not be enough, and the key, kept per
// origin (port included), is what a page of another origin cannot read.
// Requests a browser marks as coming from another site (Sec-Fetch-Site)
// are refused. Sessions live in the daemon's memory: signing out ends one
// for good, and a restart ends them all. The Host and Origin checks apply
// as to every request.

//go:embed ui
var uiFiles embed.FS

// UI paths and limits.
const (
	uiPrefix     = "/ui/"
	uiLoginPath  = "/ui/login"
	csrfHeader   = "X-Infinity-CSRF"
	uiCodeTTL    = 2 * time.Minute
	uiSessionTTL = 12 * time.Hour
	// uiMaxSessions bounds the sessions kept (the oldest go first).
	uiMaxSessions = 256
	// uiMaxCodes bounds the codes waiting to be spent.
	uiMaxCodes = 64
	// CodeCSRF is the API error code of a cookie-authenticated request
	// without the session's key, or one a browser marks as sent by another
	// site (403).
	CodeCSRF = "forbidden_csrf"
)

// uiAuth makes and checks one-time codes and sessions.
type uiAuth struct {
	key      []byte
	now      func() time.Time
	mu       sync.Mutex
	codes    map[string]time.Time // sha256(code) → when it expires
	sessions map[string]time.Time // nonce → when it expires
}

func newUIAuth(token string) *uiAuth {
	k := sha256.Sum256([]byte("infinity web ui\x00" + token))
	return &uiAuth{key: k[:], now: time.Now, codes: map[string]time.Time{}, sessions: map[string]time.Time{}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported systems
	return hex.EncodeToString(b)
}

func (a *uiAuth) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

func codeKey(code string) string {
	h := sha256.Sum256([]byte(code))
	return string(h[:])
}

// newCode makes a one-time code, valid for uiCodeTTL.
func (a *uiAuth) newCode() (string, time.Time) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, exp := range a.codes {
		if !now.Before(exp) || len(a.codes) >= uiMaxCodes {
			delete(a.codes, k)
		}
	}
	code := randomHex(24)
	exp := now.Add(uiCodeTTL)
	a.codes[codeKey(code)] = exp
	return code, exp
}

// redeem spends a code: true once, if it was made here and has not expired.
func (a *uiAuth) redeem(code string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := codeKey(code)
	exp, ok := a.codes[k]
	delete(a.codes, k)
	return ok && a.now().Before(exp)
}

// newSession starts a session and returns its cookie value: expiry,
// nonce, MAC.
func (a *uiAuth) newSession() (string, time.Time) {
	now := a.now()
	exp := now.Add(uiSessionTTL)
	e, n := strconv.FormatInt(exp.Unix(), 10), randomHex(16)
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, x := range a.sessions {
		if !now.Before(x) {
			delete(a.sessions, k)
		}
	}
	if len(a.sessions) >= uiMaxSessions {
		oldest := ""
		for k, x := range a.sessions {
			if oldest == "" || x.Before(a.sessions[oldest]) {
				oldest = k
			}
		}
		delete(a.sessions, oldest)
	}
	a.sessions[n] = exp
	return e + "." + n + "." + a.mac("session", e, n), exp
}

// session checks a cookie value and returns its nonce: signed here, not
// expired, not ended.
func (a *uiAuth) session(v string) (string, bool) {
	e, rest, ok1 := strings.Cut(v, ".")
	n, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return "", false
	}
	if !hmac.Equal([]byte(mac), []byte(a.mac("session", e, n))) {
		return "", false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[n]
	if !ok || !a.now().Before(exp) {
		return "", false
	}
	return n, true
}

// end ends a session.
func (a *uiAuth) end(nonce string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, nonce)
}

// csrf is a session's CSRF token.
func (a *uiAuth) csrf(nonce string) string { return a.mac("csrf", nonce)[:32] }

// cookieName is per port: cookies do not tell ports apart, and two
// daemons on one host must not overwrite each other's sessions.
func (d *Daemon) cookieName() string { return "infinity_ui_" + portOf(d.Addr()) }

// uiSession returns the nonce of the request's valid session cookie.
func (d *Daemon) uiSession(r *http.Request) (string, bool) {
	c, err := r.Cookie(d.cookieName())
	if err != nil {
		return "", false
	}
	return d.ui.session(c.Value)
}

// cookieAuth authenticates a request by its session cookie: ok when it
// has a valid one; err when it does but lacks the session's key, or a
// browser says another site sent it.
func (d *Daemon) cookieAuth(r *http.Request) (ok bool, err error) {
	nonce, ok := d.uiSession(r)
	if !ok {
		return false, nil
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true, apiErr(http.StatusForbidden, CodeCSRF, "a request another site made with the web UI's cookie")
	}
	key := r.Header.Get(csrfHeader)
	if key == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		key = r.URL.Query().Get("csrf") // an EventSource sets no headers
	}
	if subtle.ConstantTimeCompare([]byte(key), []byte(d.ui.csrf(nonce))) != 1 {
		return true, apiErr(http.StatusForbidden, CodeCSRF, "a request with the web UI's cookie needs the session's key in the %s header", csrfHeader)
	}
	return true, nil
}

// UICode is the answer to POST /v1/ui/codes.
type UICode struct {
	// URL opens the UI (it holds the one-time code).
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

func (d *Daemon) postUICode(w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get("Authorization") == "" {
		return apiErr(http.StatusForbidden, CodeUnauthorized, "a UI code is made with the bearer token (infinity ui), not from the UI")
	}
	code, exp := d.ui.newCode()
	writeJSON(w, http.StatusCreated, UICode{URL: "http://" + d.Addr() + uiLoginPath + "?code=" + code, Expires: exp})
	return nil
}

// uiLogin spends a one-time code and sets the session cookie.
func (d *Daemon) uiLogin(w http.ResponseWriter, r *http.Request) {
	uiHeaders(w)
	if !d.ui.redeem(r.URL.Query().Get("code")) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`<!doctype html><meta charset="utf-8"><title>Infinity</title><link rel="stylesheet" href="/ui/app.css">` +
			`<main class="signin"><h1>This link was used or has expired</h1><p>Each link from <code>infinity ui</code> opens the UI once, within two minutes. Run <code>infinity ui</code> again.</p></main>`))
		return
	}
	v, exp := d.ui.newSession()
	nonce, _ := d.ui.session(v) // just made
	http.SetCookie(w, &http.Cookie{Name: d.cookieName(), Value: v, Path: "/", Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	// The key rides in the fragment, which the browser keeps across the
	// redirect and never sends; the page stores it and clears the address.
	http.Redirect(w, r, uiPrefix+"#key="+d.ui.csrf(nonce), http.StatusSeeOther)
}

// uiLogout ends the request's session for good and drops the cookie.
func (d *Daemon) uiLogout(w http.ResponseWriter, r *http.Request) error {
	nonce, ok := d.uiSession(r)
	if !ok {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "no web UI session to end (sign-out is for the web UI)")
	}
	d.ui.end(nonce)
	http.SetCookie(w, &http.Cookie{Name: d.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]string{"status": "signed out"})
	return nil
}

// uiHeaders keeps the UI's pages to their own origin.
func uiHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// uiStatic serves the embedded files; any path that is no file gets the
// app's page (its own router reads the path).
func uiStatic() http.Handler {
	sub, _ := fs.Sub(uiFiles, "ui") // the directory is embedded
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uiHeaders(w)
		name := strings.TrimPrefix(r.URL.Path, uiPrefix)
		if name == "" || strings.Contains(name, "/") {
			name = "index.html"
		}
		if _, err := fs.Stat(sub, name); err != nil {
			name = "index.html"
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		if name == "index.html" {
			r2.URL.Path = "/" // FileServer redirects /index.html to ./
		}
		files.ServeHTTP(w, r2)
	})
}
