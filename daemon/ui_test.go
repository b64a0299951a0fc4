package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

// uiClient is a browser-like client: no bearer token, a cookie jar.
type uiClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func (u *uiClient) do(method, path, body string, hdr map[string]string) (*http.Response, string) {
	u.t.Helper()
	req, err := http.NewRequest(method, u.base+path, strings.NewReader(body))
	if err != nil {
		u.t.Fatal(err)
	}
	if u.csrf != "" {
		req.Header.Set("X-Infinity-CSRF", u.csrf)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn spends a one-time code as a browser does.
func signIn(t *testing.T, d *daemon.Daemon, c *daemon.Client) *uiClient {
	t.Helper()
	code, err := c.UICode(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(code.URL, "http://"+d.Addr()+"/ui/login?code=") || time.Until(code.Expires) <= 0 {
		t.Fatalf("code: %+v", code)
	}
	jar, _ := cookiejar.New(nil)
	u := &uiClient{t: t, base: "http://" + d.Addr(), hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp, _ := u.do("GET", strings.TrimPrefix(code.URL, u.base), "", nil)
	key, ok := strings.CutPrefix(resp.Header.Get("Location"), "/ui/#key=")
	if resp.StatusCode != http.StatusSeeOther || !ok || len(key) != 32 {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("the session cookie lacks %s: %s", want, sc)
		}
	}
	// The code works once.
	if resp, body := u.do("GET", strings.TrimPrefix(code.URL, u.base), "", nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "infinity ui") {
		t.Fatalf("a spent code: %d %s", resp.StatusCode, body)
	}
	// The cookie alone reads nothing: a page of another port of this host
	// gets it too, but not the key.
	if resp, body := u.do("GET", "/v1/status", "", nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, daemon.CodeCSRF) {
		t.Fatalf("the cookie without the key: %d %s", resp.StatusCode, body)
	}
	u.csrf = key
	if resp, body := u.do("GET", "/v1/status", "", nil); resp.StatusCode != 200 {
		t.Fatalf("the cookie with the key: %d %s", resp.StatusCode, body)
	}
	return u
}

// The UI's files and its sign-in: the page loads without a session but
// reads nothing; a code becomes a cookie once; a cookie reads, and changes
// things only with the CSRF token and from the daemon's own origin.
func TestUIAuth(t *testing.T) {
	d, c := startDaemon(t, t.TempDir())
	base := "http://" + d.Addr()
	anon := &uiClient{t: t, base: base, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}

	resp, body := anon.do("GET", "/ui/", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `<script src="/ui/app.js"`) {
		t.Fatalf("GET /ui/: %d %.200s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP: %q", csp)
	}
	if resp, _ := anon.do("GET", "/ui/app.js", "", nil); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Errorf("app.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := anon.do("GET", "/", "", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/v1/threads", "/v1/status", "/v1/events"} {
		if resp, _ := anon.do("GET", p, "", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d", p, resp.StatusCode)
		}
	}
	// The UI is still behind the Host check.
	code, body2 := raw(t, d, "GET", "/ui/", "", map[string]string{"Host": "evil.example:" + strings.Split(d.Addr(), ":")[1]})
	if code != http.StatusForbidden {
		t.Errorf("GET /ui/ with a foreign Host: %d %s", code, body2)
	}
	if resp, body := anon.do("GET", "/ui/login?code=nope", "", nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "infinity ui") {
		t.Errorf("a made-up code: %d %s", resp.StatusCode, body)
	}

	u := signIn(t, d, c)
	if resp, body := u.do("GET", "/v1/threads", "", nil); resp.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("list with the cookie: %d %s", resp.StatusCode, body)
	}
	start := `{"agent":"demo","text":"hi"}`
	key := u.csrf
	u.csrf = ""
	if resp, body := u.do("POST", "/v1/threads", start, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, daemon.CodeCSRF) {
		t.Errorf("POST without the CSRF token: %d %s", resp.StatusCode, body)
	}
	if resp, body := u.do("GET", "/v1/threads?csrf="+key, "", nil); resp.StatusCode != 200 {
		t.Errorf("GET with the key as a parameter (EventSource): %d %s", resp.StatusCode, body)
	}
	if resp, body := u.do("POST", "/v1/threads?csrf="+key, start, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with the key as a parameter only: %d %s", resp.StatusCode, body)
	}
	u.csrf = key
	for _, site := range []string{"same-site", "cross-site"} {
		if resp, body := u.do("GET", "/v1/threads", "", map[string]string{"Sec-Fetch-Site": site}); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, daemon.CodeCSRF) {
			t.Errorf("Sec-Fetch-Site %s: %d %s", site, resp.StatusCode, body)
		}
	}
	if resp, body := u.do("POST", "/v1/threads", start, map[string]string{"X-Infinity-CSRF": "0123456789abcdef0123456789abcdef", "Sec-Fetch-Site": "same-origin"}); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, daemon.CodeCSRF) {
		t.Errorf("POST with a wrong CSRF token: %d %s", resp.StatusCode, body)
	}
	if resp, body := u.do("POST", "/v1/threads", start, map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, daemon.CodeBadOrigin) {
		t.Errorf("POST from another origin: %d %s", resp.StatusCode, body)
	}
	if resp, body := u.do("POST", "/v1/threads", start, map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}); resp.StatusCode != http.StatusCreated {
		t.Errorf("POST with the CSRF token: %d %s", resp.StatusCode, body)
	}
	if resp, body := u.do("POST", "/v1/ui/codes", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a code made from a UI session: %d %s", resp.StatusCode, body)
	}
	// A cookie that was tampered with is no session.
	bad := &uiClient{t: t, base: base, hc: &http.Client{}}
	for _, v := range []string{"1.2.3", "x", strings.Repeat("9", 12) + ".00.00"} {
		resp, _ := bad.do("GET", "/v1/threads", "", map[string]string{"Cookie": "infinity_ui_" + strings.Split(d.Addr(), ":")[1] + "=" + v})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("cookie %q: %d", v, resp.StatusCode)
		}
	}
	// Signing out ends the session for good: a copy of the cookie is no
	// use afterwards.
	cookie := u.hc.Jar.Cookies(mustURL(t, base))[0]
	if resp, _ := u.do("POST", "/v1/ui/logout", "", nil); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d %s", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	if resp, _ := u.do("GET", "/v1/threads", "", map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a copy of the cookie after logout: %d", resp.StatusCode)
	}
}

// GET /v1/threads pages, searches and filters, with the total in
// X-Total-Count; bad parameters are refused with what is allowed.
func TestThreadListPaging(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemon(t, home)
	ctx := t.Context()
	var roots []infinity.ThreadID
	for i := range 6 {
		st, err := c.Start(ctx, daemon.StartRequest{Agent: "demo", Text: "go", ID: infinity.ThreadID("root" + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, st.Thread)
	}
	for _, r := range roots {
		waitStatus(t, c, r, daemon.StatusWaiting, daemon.WaitingForInput)
	}
	get := func(q string) ([]daemon.ThreadView, int) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+d.Addr()+"/v1/threads?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+token(t, home))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []daemon.ThreadView
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
			t.Fatalf("GET /v1/threads?%s: %d", q, resp.StatusCode)
		}
		n, _ := strconv.Atoi(resp.Header.Get("X-Total-Count"))
		return out, n
	}
	page, total := get("roots=true&order=newest&limit=4")
	if total != 6 || len(page) != 4 || page[0].ID != "root5" || page[3].ID != "root2" {
		t.Fatalf("first page: total %d, %v", total, ids(page))
	}
	if page[0].Subtree.Threads != 4 {
		t.Errorf("a paged root's subtree: %+v", page[0].Subtree)
	}
	if page, total = get("roots=true&order=newest&limit=4&offset=4"); total != 6 || len(page) != 2 || page[1].ID != "root0" {
		t.Fatalf("second page: total %d, %v", total, ids(page))
	}
	if page, total = get("q=ROOT3"); total != 1 || len(page) != 1 || page[0].ID != "root3" {
		t.Fatalf("search: total %d, %v", total, ids(page))
	}
	if page, total = get("status=closed&limit=5"); total != 18 || len(page) != 5 {
		t.Fatalf("closed children: total %d, %d rows", total, len(page))
	}
	if page, total = get("status=waiting&roots=true"); total != 6 || len(page) != 6 {
		t.Fatalf("waiting roots: total %d, %d rows", total, len(page))
	}
	if page, total = get(""); total != 24 || len(page) != 24 {
		t.Fatalf("everything: total %d, %d rows", total, len(page))
	}
	for _, q := range []string{"limit=x", "limit=-1", "limit=5000", "offset=-3", "status=asleep", "order=up", "roots=yes", "sort=id"} {
		code, body := raw(t, d, "GET", "/v1/threads?"+q, "", map[string]string{"Authorization": "Bearer " + token(t, home)})
		if code != http.StatusBadRequest || !strings.Contains(body, daemon.CodeBadRequest) {
			t.Errorf("?%s: %d %s", q, code, body)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func ids(vs []daemon.ThreadView) []infinity.ThreadID {
	var out []infinity.ThreadID
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

// token reads the daemon's bearer token from its home.
func token(t *testing.T, home string) string {
	t.Helper()
	tok, err := daemon.ReadToken(home)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// GET /v1/events names the threads that change, as server-sent events.
func TestEventsStream(t *testing.T) {
	d, c := startDaemon(t, t.TempDir())
	u := signIn(t, d, c)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u.base+"/v1/events?csrf="+u.csrf, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := u.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan daemon.Changed)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev daemon.Changed
			if json.Unmarshal([]byte(data), &ev) != nil {
				t.Errorf("an event that is no JSON: %s", data)
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	if ev := <-events; len(ev.Threads) != 0 || ev.Many {
		t.Fatalf("the first event says the stream is open, and nothing else: %+v", ev)
	}
	st, err := c.Start(ctx, daemon.StartRequest{Agent: "demo", Text: "go", ID: "watched"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[infinity.ThreadID]bool{}
	for len(seen) < 4 {
		select {
		case ev := <-events:
			for _, id := range ev.Threads {
				if id == st.Thread {
					seen[id] = true
				} else if info, err := c.Thread(ctx, id); err == nil && info.Parent == st.Thread {
					seen[id] = true
				}
			}
		case <-ctx.Done():
			t.Fatalf("events named %d of the tree's 4 threads", len(seen))
		}
	}
}

// The timeline of the demo's tree: a lane per thread in tree order, the
// children sleeping then closed, the root waiting for them, marks for the
// model's and the tools' items.
func TestTimeline(t *testing.T) {
	home := t.TempDir()
	d, c := startDaemon(t, home)
	st, err := c.Start(t.Context(), daemon.StartRequest{Agent: "demo", Text: "go"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	code, body := raw(t, d, "GET", "/v1/threads/"+url.PathEscape(string(st.Thread))+"/timeline", "", map[string]string{"Authorization": "Bearer " + token(t, home)})
	var tl daemon.Timeline
	if code != 200 || json.Unmarshal([]byte(body), &tl) != nil {
		t.Fatalf("timeline: %d %s", code, body)
	}
	if len(tl.Lanes) != 4 || tl.Lanes[0].Thread != st.Thread || tl.Lanes[0].Depth != 0 || tl.Lanes[1].Depth != 1 {
		t.Fatalf("lanes: %+v", tl.Lanes)
	}
	if !tl.Start.Before(tl.End) {
		t.Errorf("start %v, end %v", tl.Start, tl.End)
	}
	states := func(l daemon.Lane) map[string]bool {
		m := map[string]bool{}
		for _, s := range l.Spans {
			m[s.State] = true
			if s.To.Before(s.From) {
				t.Errorf("%s: a span ends before it starts: %+v", l.Thread, s)
			}
		}
		return m
	}
	root := tl.Lanes[0]
	if s := root.Spans[len(root.Spans)-1]; s.State != daemon.SpanInput || !s.Open {
		t.Errorf("the root's last span: %+v, want an open wait for input", s)
	}
	kinds := map[string]int{}
	for _, m := range root.Marks {
		kinds[m.Kind]++
	}
	if kinds[daemon.MarkInput] != 1 || kinds[daemon.MarkModel] == 0 || kinds[daemon.MarkTool] < 3 || kinds[daemon.MarkResult] < 3 {
		t.Errorf("root marks: %v", kinds)
	}
	for _, kid := range tl.Lanes[1:] {
		if kid.Status != daemon.StatusClosed || !states(kid)[daemon.SpanSleeping] || kid.Spans[len(kid.Spans)-1].Open {
			t.Errorf("child lane: %+v", kid)
		}
	}
	if code, _ := raw(t, d, "GET", "/v1/threads/nothere/timeline", "", map[string]string{"Authorization": "Bearer " + token(t, home)}); code != http.StatusNotFound {
		t.Errorf("timeline of an unknown thread: %d", code)
	}
}

// A message id names one message: resending it is harmless, reusing it for
// other text is refused.
func TestMessageIDConflict(t *testing.T) {
	_, c := startDaemon(t, t.TempDir())
	ctx := t.Context()
	st, err := c.Start(ctx, daemon.StartRequest{Agent: "demo", Text: "go"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	if _, err := c.Send(ctx, st.Thread, daemon.MessageRequest{ID: "m1", Text: "one more thing"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var seen bool
		err := c.Items(ctx, st.Thread, 0, false, func(l daemon.ItemLine) error {
			seen = seen || (l.Item != nil && l.Item.ID == "m1")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("m1 never reached the history")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.Send(ctx, st.Thread, daemon.MessageRequest{ID: "m1", Text: "one more thing"}); err != nil {
		t.Fatalf("the same message again: %v", err)
	}
	_, err = c.Send(ctx, st.Thread, daemon.MessageRequest{ID: "m1", Text: "something else"})
	wantCode(t, err, http.StatusConflict, daemon.CodeConflict)
}

// A message its thread is running (delivered, in a slice that waits for a
// slow model, not yet in the history) keeps its id: other text under it is
// refused, the same text is a harmless resend, and the history holds it
// once.
func TestMessageIDConflictWhileRunning(t *testing.T) {
	_, c := startDaemon(t, t.TempDir())
	ctx := t.Context()
	script := `{"rules":[{"when":{"last_text":"slow"},"reply":{"delay":"1500ms","text":"done slowly"}},{"when":{},"reply":{"text":"hi"}}]}`
	if _, err := c.RegisterAgent(ctx, daemon.AgentRequest{Origin: "slow.yaml", AgentSource: daemon.AgentSource{
		YAML: "name: slow\nmodel:\n  provider: scripted\n  script: s.json\n", Script: script}}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Start(ctx, daemon.StartRequest{Agent: "slow", Text: "go"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	if _, err := c.Send(ctx, st.Thread, daemon.MessageRequest{ID: "m2", Text: "slow one"}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusRunning, "")
	_, err = c.Send(ctx, st.Thread, daemon.MessageRequest{ID: "m2", Text: "something else"})
	wantCode(t, err, http.StatusConflict, daemon.CodeConflict)
	if _, err := c.Send(ctx, st.Thread, daemon.MessageRequest{ID: "m2", Text: "slow one"}); err != nil {
		t.Fatalf("the same message again: %v", err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	var texts []string
	if err := c.Items(ctx, st.Thread, 0, false, func(l daemon.ItemLine) error {
		if l.Item != nil && l.Item.ID == "m2" {
			texts = append(texts, l.Item.Text)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(texts) != 1 || texts[0] != "slow one" {
		t.Errorf("m2 in the history: %q", texts)
	}
}

// Closing or compacting a closed thread says which, not "send to".
func TestCloseErrorsNameTheAction(t *testing.T) {
	_, c := startDaemon(t, t.TempDir())
	ctx := t.Context()
	st, err := c.Start(ctx, daemon.StartRequest{Agent: "demo", Text: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Close(ctx, st.Thread); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, st.Thread, daemon.StatusClosed, "")
	_, err = c.Close(ctx, st.Thread)
	wantCode(t, err, http.StatusConflict, daemon.CodeClosed)
	if !strings.HasPrefix(err.Error(), "close "+string(st.Thread)) {
		t.Errorf("close: %v", err)
	}
	_, err = c.Compact(ctx, st.Thread)
	wantCode(t, err, http.StatusConflict, daemon.CodeClosed)
	if !strings.HasPrefix(err.Error(), "compact "+string(st.Thread)) {
		t.Errorf("compact: %v", err)
	}
}

// An agent file's rate limit holds across its threads, and a thread
// waiting for its turn says so.
func TestRateLimitFromAgentFile(t *testing.T) {
	_, c := startDaemon(t, t.TempDir())
	ctx := t.Context()
	yaml := "name: limited\nmodel:\n  provider: scripted\n  script: ./script.json\n  rate_limit: {concurrent: 1}\n"
	script := `{"rules": [{"name": "slow", "reply": {"text": "done", "delay": "300ms"}}]}`
	info, err := c.RegisterAgent(ctx, daemon.AgentRequest{Origin: "limited.yaml", AgentSource: daemon.AgentSource{YAML: yaml, Script: script}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []infinity.ThreadID
	for range 3 {
		st, err := c.Start(ctx, daemon.StartRequest{Agent: info.Key, Text: "go"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.Thread)
	}
	deadline := time.Now().Add(10 * time.Second)
	seen := false
	for !seen && time.Now().Before(deadline) {
		for _, id := range ids {
			v, err := c.Thread(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status == daemon.StatusRunning && strings.Contains(v.Detail, "waiting for its turn at scripted/") {
				seen = true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !seen {
		t.Fatal("no thread showed that it waits for its turn")
	}
	for _, id := range ids {
		waitStatus(t, c, id, daemon.StatusWaiting, daemon.WaitingForInput)
	}
	st, err := c.Status(ctx)
	if err != nil || len(st.ModelLimits) != 1 {
		t.Fatalf("status: %+v, %v", st.ModelLimits, err)
	}
	// A newer file for the same model without a rate limit lifts it.
	yaml2 := "name: limited\ndescription: unlimited now\nmodel:\n  provider: scripted\n  script: ./script.json\n"
	time.Sleep(20 * time.Millisecond) // a later registration time
	if _, err := c.RegisterAgent(ctx, daemon.AgentRequest{Origin: "limited.yaml", AgentSource: daemon.AgentSource{YAML: yaml2, Script: script}}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx); err != nil || len(st.ModelLimits) != 0 {
		t.Fatalf("status after the newer file: %+v, %v", st.ModelLimits, err)
	}
}
