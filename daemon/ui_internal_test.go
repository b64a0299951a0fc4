package daemon

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// Codes expire and work once; sessions expire, and only this daemon's
// token signs them.
func TestUIAuthExpiry(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	a := newUIAuth("token-one")
	a.now = func() time.Time { return now }
	code, exp := a.newCode()
	if !exp.Equal(now.Add(uiCodeTTL)) {
		t.Fatalf("code expires %v", exp)
	}
	stale, _ := a.newCode()
	now = now.Add(uiCodeTTL - time.Second)
	if !a.redeem(code) || a.redeem(code) {
		t.Fatal("a code works once, within its time")
	}
	now = now.Add(2 * time.Second)
	if a.redeem(stale) {
		t.Fatal("an expired code worked")
	}
	for range uiMaxCodes * 2 { // codes nobody spends do not pile up
		a.newCode()
	}
	if len(a.codes) > uiMaxCodes {
		t.Fatalf("%d codes kept", len(a.codes))
	}

	s, _ := a.newSession()
	nonce, ok := a.session(s)
	if !ok || a.csrf(nonce) == "" {
		t.Fatal("a fresh session is refused")
	}
	if _, ok := newUIAuth("token-two").session(s); ok {
		t.Fatal("a session signed with another token was accepted")
	}
	a.end(nonce)
	if _, ok := a.session(s); ok {
		t.Fatal("an ended session was accepted")
	}
	s, _ = a.newSession()
	for range uiMaxSessions { // the oldest session goes when too many start
		now = now.Add(time.Millisecond)
		a.newSession()
	}
	if _, ok := a.session(s); ok || len(a.sessions) > uiMaxSessions {
		t.Fatalf("%d sessions kept, the oldest still valid: %v", len(a.sessions), ok)
	}
	s, _ = a.newSession()
	now = now.Add(uiSessionTTL)
	if _, ok := a.session(s); ok {
		t.Fatal("an expired session was accepted")
	}
}

// FuzzUISession: any cookie value is refused without panicking, unless
// this daemon made it.
func FuzzUISession(f *testing.F) {
	a := newUIAuth("fuzz")
	a.now = func() time.Time { return time.Unix(1_800_000_000, 0) }
	// Made as newSession makes one, with a fixed nonce: the fuzzing
	// workers must agree on it.
	e, n := "1800000100", "00112233445566778899aabbccddeeff"
	good := e + "." + n + "." + a.mac("session", e, n)
	a.sessions[n] = time.Unix(1_800_000_100, 0)
	if _, ok := a.session(good); !ok {
		f.Fatal("the seed session is refused")
	}
	f.Add(good)
	f.Add("")
	f.Add("1.2.3")
	f.Add("99999999999999999999.a.b")
	f.Fuzz(func(t *testing.T, v string) {
		if _, ok := a.session(v); ok && v != good {
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzListQuery: any query string is parsed or refused, never a panic,
// and what parses is within bounds.
func FuzzListQuery(f *testing.F) {
	f.Add("roots=true&limit=100&offset=0&q=abc&status=waiting&order=newest")
	f.Add("limit=99999999999999999999")
	f.Add("status=&q=%ff")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lq, err := parseListQuery(q)
		if err != nil {
			return
		}
		if lq.Limit < 0 || lq.Limit > maxListLimit || lq.Offset < 0 || lq.Search != strings.ToLower(lq.Search) {
			t.Fatalf("%q parsed to %+v", raw, lq)
		}
	})
}

// FuzzParseEnv: any env file is read or refused, never a panic, and what
// is read has valid names and no NUL.
func FuzzParseEnv(f *testing.F) {
	f.Add([]byte("A=1\nexport B=\"two\\n\"\n# c\nC='x'\n"))
	f.Add([]byte("=x\n"))
	f.Add([]byte("A=\"unclosed\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vars, err := parseEnv(b)
		if err != nil {
			return
		}
		for _, kv := range vars {
			if !validEnvName(kv[0]) || strings.ContainsRune(kv[1], 0) {
				t.Fatalf("read %q", kv)
			}
		}
	})
}
