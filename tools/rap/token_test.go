package rap

import (
	"net/url"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

func TestTokens(t *testing.T) {
	tk := Tokens{Key: testKey}
	tok := tk.Token("t1", "call-1")
	tamper := []byte(tok)
	tamper[3] ^= 1
	cases := []struct {
		name   string
		tokens Tokens
		group  infinity.ThreadID
		call   string
		token  string
		want   bool
	}{
		{"11 valid", tk, "t1", "call-1", tok, true},
		{"11 tampered", tk, "t1", "call-1", string(tamper), false},
		{"11 truncated", tk, "t1", "call-1", tok[:len(tok)-1], false},
		{"11 empty", tk, "t1", "call-1", "", false},
		{"10 other group", tk, "t2", "call-1", tok, false},
		{"10 other call", tk, "t1", "call-2", tok, false},
		{"10 boundary shift", tk, "t1c", "all-1", tok, false},
		{"11 other key", Tokens{Key: []byte("another key")}, "t1", "call-1", tok, false},
		{"11 no key", Tokens{}, "t1", "call-1", Tokens{}.Token("t1", "call-1"), false},
		{"9 rotated key still accepted", Tokens{Key: []byte("new"), Previous: [][]byte{testKey}}, "t1", "call-1", tok, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tokens.Verify(tc.group, tc.call, tc.token); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
	if tk.Token("t1", "call-1") != tok {
		t.Fatal("tokens are not deterministic")
	}
	if strings.ContainsAny(tok, "+/=") || len(tok) != 43 {
		t.Fatalf("token %q is not unpadded base64url of 32 bytes", tok)
	}
}

func TestCallbackURL(t *testing.T) {
	tk := Tokens{Key: testKey}
	raw := tk.CallbackURL("https://rt.example/base/", "t1", "call/1 ?")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/base/rap/callback/"+tk.Token("t1", "call/1 ?") || u.Query().Get("call") != "call/1 ?" {
		t.Fatalf("callback URL %s", raw)
	}
	if tk.CallbackURL("https://rt.example", "t1", "a") == tk.CallbackURL("https://rt.example", "t1", "b") {
		t.Fatal("two calls share a URL")
	}
}
