package rap

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

func post(t *testing.T, h http.Handler, method, target, body string, header ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestHandlerStatus(t *testing.T) {
	tk := Tokens{Key: testKey}
	url := func(group infinity.ThreadID, call string) string {
		return tk.CallbackURL("http://rt.example/prefix", group, call)
	}
	result := `{"type":"tool_result","group_id":"t1","id":"c1","text":"done"}`
	view := `{"type":"view_update","group_id":"t1","view_type":"diff","content":{"a":1}}`
	cases := []struct {
		name   string
		method string
		target string
		body   string
		status int
		sent   int
	}{
		{"7 verified tool_result answers 200", "POST", url("t1", "c1"), result, 200, 1},
		{"11 bare token URL without call query", "POST", "http://rt.example/prefix/rap/callback/" + tk.Token("t1", "c1"), result, 200, 1},
		{"8 GET is refused", "GET", url("t1", "c1"), "", 405, 0},
		{"8 no token", "POST", "http://rt.example/prefix/rap/callback/", result, 404, 0},
		{"8 body over 1 MiB", "POST", url("t1", "c1"), `{"type":"tool_result","group_id":"t1","id":"c1","text":"` + strings.Repeat("x", 1<<20) + `"}`, 413, 0},
		{"8 malformed JSON", "POST", url("t1", "c1"), `{"type":`, 400, 0},
		{"8 unknown type", "POST", url("t1", "c1"), `{"type":"tool_error","group_id":"t1","id":"c1"}`, 400, 0},
		{"8 missing field", "POST", url("t1", "c1"), `{"type":"tool_result","group_id":"t1","text":"x"}`, 400, 0},
		{"11 47 48 tampered token", "POST", strings.Replace(url("t1", "c1"), "/callback/", "/callback/x", 1), result, 401, 0},
		{"10 47 48 token of another thread", "POST", url("t2", "c1"), result, 401, 0},
		{"10 47 48 token of another call", "POST", url("t1", "c2"), result, 401, 0},
		{"10 URL call differs from body id", "POST", strings.Replace(url("t1", "c1"), "call=c1", "call=c2", 1), result, 401, 0},
		{"10 view_update needs the URL's call", "POST", "http://rt.example/prefix/rap/callback/" + tk.Token("t1", "c1"), view, 401, 0},
		{"10 view_update for another thread", "POST", url("t2", "c1"), view, 401, 0},
		{"7 view_update answers 200", "POST", url("t1", "c1"), view, 200, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &sender{}
			h := &Handler{Tokens: tk, Sender: s, Log: quiet}
			status, body := post(t, h, tc.method, tc.target, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			var reply map[string]any
			if err := json.Unmarshal([]byte(body), &reply); err != nil {
				t.Fatalf("reply %q is not JSON", body)
			}
			if status == 200 && reply["ok"] != true || status != 200 && reply["error"] == nil {
				t.Fatalf("reply %s", body)
			}
			if status == 401 && reply["error"] != "unauthorized" {
				t.Fatalf("401 leaks detail: %s", body)
			}
			if got := len(s.sent()); got != tc.sent {
				t.Fatalf("%d messages sent, want %d", got, tc.sent)
			}
		})
	}
}

func TestHandlerDelivery(t *testing.T) {
	tk := Tokens{Key: testKey}
	target := tk.CallbackURL("http://rt.example", "t1", "c1")
	t.Run("49 a duplicate tool_result keeps its message id", func(t *testing.T) {
		s := &sender{}
		h := &Handler{Tokens: tk, Sender: s, Log: quiet}
		body := `{"type":"tool_result","group_id":"t1","id":"c1","call_id":"p1","text":"done","subscription":true}`
		for range 2 {
			if status, b := post(t, h, "POST", target, body); status != 200 {
				t.Fatalf("status %d %s", status, b)
			}
		}
		sent := s.sent()
		want := infinity.InputMessage{
			ID: "rap-tool-result-c1", GroupID: "t1", Subscription: true,
			Content: infinity.Content{Type: infinity.ContentToolResult, ID: "c1", CallID: "p1", Parts: []infinity.Part{{Type: "text", Text: "done"}}},
		}
		if len(sent) != 2 || !reflect.DeepEqual(sent[0], want) || sent[1].ID != sent[0].ID || len(s.applied()) != 1 {
			t.Fatalf("sent %+v", sent)
		}
	})
	t.Run("49 subscription events with an Idempotency-Key collapse, without one they do not", func(t *testing.T) {
		s := &sender{}
		h := &Handler{Tokens: tk, Sender: s, Log: quiet}
		ev := `{"type":"subscription_event","group_id":"t1","tool_call_id":"c1","text":"tick"}`
		post(t, h, "POST", target, ev, "Idempotency-Key", "k1")
		post(t, h, "POST", target, ev, "Idempotency-Key", "k1")
		post(t, h, "POST", target, ev, "Idempotency-Key", "k2")
		post(t, h, "POST", target, ev)
		post(t, h, "POST", target, ev)
		if got := len(s.applied()); got != 4 {
			t.Fatalf("%d events applied, want 4 (k1, k2, and two keyless)", got)
		}
	})
	t.Run("87 view_update goes to the sink untouched", func(t *testing.T) {
		s, v := &sender{}, &views{}
		h := &Handler{Tokens: tk, Sender: s, Views: v, Log: quiet}
		post(t, h, "POST", target, `{"type":"view_update","group_id":"t1","view_type":"diff","content":{"b": [1, 2]}}`)
		if got := v.all(); len(got) != 1 || got[0] != (view{"t1", "diff", `{"b": [1, 2]}`}) || len(s.sent()) != 0 {
			t.Fatalf("views %+v sent %d", got, len(s.sent()))
		}
	})
	t.Run("7 a Send failure answers 500 so the tool retries", func(t *testing.T) {
		h := &Handler{Tokens: tk, Sender: &sender{fail: errors.New("queue down")}, Log: quiet}
		status, body := post(t, h, "POST", target, `{"type":"tool_result","group_id":"t1","id":"c1","text":"x"}`)
		if status != 500 || strings.Contains(body, "queue down") {
			t.Fatalf("status %d body %s", status, body)
		}
	})
}

func TestMessage(t *testing.T) {
	cases := []struct {
		name string
		body string
		want infinity.InputMessage
	}{
		{"50 55 text result", `{"type":"tool_result","group_id":"t1","id":"c1","call_id":null,"text":"not json"}`,
			infinity.InputMessage{ID: "rap-tool-result-c1", GroupID: "t1", Content: infinity.ResultContent("c1", "not json")}},
		{"50 content wins over text", `{"type":"tool_result","group_id":"t1","id":"c1","text":"ignored","content":[{"type":"text","text":"a"},{"type":"image","data":"iVBO","mediaType":"image/png"}]}`,
			infinity.InputMessage{ID: "rap-tool-result-c1", GroupID: "t1", Content: infinity.Content{Type: infinity.ContentToolResult, ID: "c1",
				Parts: []infinity.Part{{Type: "text", Text: "a"}, {Type: "image", Data: "iVBO", MediaType: "image/png"}}}}},
		{"53 display_as carried, model text unaltered", `{"type":"tool_result","group_id":"t1","id":"c1","text":"full","display_as":[{"type":"text","content":"short"}]}`,
			infinity.InputMessage{ID: "rap-tool-result-c1", GroupID: "t1", Content: infinity.ResultContent("c1", "full"),
				DisplayAs: []infinity.DisplaySegment{{Type: "text", Content: json.RawMessage(`"short"`)}}}},
		{"57 subscription flag", `{"type":"tool_result","group_id":"t1","id":"c1","text":"ok","subscription":true}`,
			infinity.InputMessage{ID: "rap-tool-result-c1", GroupID: "t1", Content: infinity.ResultContent("c1", "ok"), Subscription: true}},
		{"62 65 67 subscription event", `{"type":"subscription_event","group_id":"t1","tool_call_id":"c1","text":"{}","associative":true,"final":true}`,
			infinity.InputMessage{GroupID: "t1", Content: infinity.ResultContent("c1", "{}"),
				Synthetic: &infinity.Synthetic{Type: infinity.SyntheticSubscriptionEvent, ToolCallID: "c1", Associative: true, Final: true}}},
		{"74 75 oauth", `{"type":"oauth","group_id":"t1","id":"c1","call_id":"p","auth_url":"https://a.example/x"}`,
			infinity.InputMessage{ID: "rap-oauth-c1", GroupID: "t1", Content: infinity.Content{Type: infinity.ContentOAuth, ID: "c1", CallID: "p", AuthURL: "https://a.example/x"}}},
		{"79 80 user choice", `{"type":"user_choice","group_id":"t1","id":"c1","prompt":"p?","choices":["a","b"],"default":1,"response_url":"http://x.example/r"}`,
			infinity.InputMessage{ID: "rap-user-choice-c1", GroupID: "t1", Content: infinity.Content{Type: infinity.ContentUserChoice, ID: "c1",
				Prompt: "p?", Choices: []string{"a", "b"}, Default: 1, ResponseURL: "http://x.example/r"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCallback([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Message()
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.ID == "" { // events get a random id without a delivery key
				if !strings.HasPrefix(string(got.ID), prefixEvent) {
					t.Fatalf("event id %q", got.ID)
				}
				got.ID = ""
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			// The wire JSON round-trips through the engine's decoder.
			b, _ := json.Marshal(got)
			back, err := infinity.DecodeInputMessage(b)
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("round trip: %v\n%s", err, b)
			}
		})
	}
	t.Run("view_update is not a message", func(t *testing.T) {
		c, _ := DecodeCallback([]byte(`{"type":"view_update","group_id":"t1","view_type":"v","content":{}}`))
		if _, err := c.Message(); !errors.Is(err, ErrNotMessage) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("long ids are hashed to fit", func(t *testing.T) {
		id := strings.Repeat("x", 200)
		c, _ := DecodeCallback([]byte(`{"type":"tool_result","group_id":"t1","id":"` + id + `","text":"x"}`))
		a, _ := c.Message()
		b, _ := c.Message()
		if len(a.ID) > maxMessageID || a.ID != b.ID {
			t.Fatalf("ids %q %q", a.ID, b.ID)
		}
	})
}

// A Sender that says ErrRetryLater gets the tool a 503 with Retry-After;
// Forward sees only callbacks whose token checked good, as they came, and
// answers them itself when it says so.
func TestHandlerRetryLaterAndForward(t *testing.T) {
	tk := Tokens{Key: testKey}
	target := tk.CallbackURL("http://rt.example/prefix", "t1", "c1")
	result := `{"type":"tool_result","group_id":"t1","id":"c1","text":"done"}`

	s := &sender{fail: fmt.Errorf("moving: %w", ErrRetryLater)}
	h := &Handler{Tokens: tk, Sender: s, Log: quiet}
	req := httptest.NewRequest("POST", target, strings.NewReader(result))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != RetryAfter {
		t.Fatalf("status %d, Retry-After %q; want 503 with %s", w.Code, w.Header().Get("Retry-After"), RetryAfter)
	}

	var seen []Verified
	s = &sender{}
	h = &Handler{Tokens: tk, Sender: s, Log: quiet, Forward: func(w http.ResponseWriter, _ *http.Request, v Verified) bool {
		seen = append(seen, v)
		if v.Callback.Group() != "t1" {
			return false
		}
		w.WriteHeader(http.StatusAccepted)
		return true
	}}
	if status, _ := post(t, h, "POST", target, result, "Idempotency-Key", "k1"); status != http.StatusAccepted {
		t.Fatalf("forwarded: %d, want the forwarder's 202", status)
	}
	if len(s.sent()) != 0 || len(seen) != 1 || string(seen[0].Body) != result || seen[0].Call != "c1" || seen[0].Callback.DeliveryKey != "k1" {
		t.Fatalf("forward saw %+v; %d delivered here", seen, len(s.sent()))
	}
	if status, _ := post(t, h, "POST", tk.CallbackURL("http://rt.example/prefix", "t2", "c1"), result); status != http.StatusUnauthorized || len(seen) != 1 {
		t.Fatalf("a bad token reached Forward (%d)", status)
	}
	other := `{"type":"tool_result","group_id":"t2","id":"c1","text":"done"}`
	if status, _ := post(t, h, "POST", tk.CallbackURL("http://rt.example/prefix", "t2", "c1"), other); status != http.StatusOK || len(s.sent()) != 1 {
		t.Fatalf("not forwarded: %d, %d delivered", status, len(s.sent()))
	}
}
