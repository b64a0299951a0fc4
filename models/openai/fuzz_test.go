package openai

import (
	"encoding/json"
	"testing"
)

func TestEventErrorStatus(t *testing.T) {
	for in, want := range map[string]int{
		`{"error":{"code":400,"message":"x"}}`:         400,
		`{"error":{"code":"503"}}`:                     503,
		`{"error":{"code":"server_error","type":"x"}}`: 0,
		`{"error":{"message":"x"}}`:                    0,
		`{"error":{"code":99999}}`:                     0,
		`{"error":"flat string"}`:                      0,
		`not json`:                                     0,
		`{"error":{"code":429.5}}`:                     0,
	} {
		got, ok := eventErrorStatus([]byte(in))
		if got != want || ok != (want != 0) {
			t.Errorf("%s: %d %v, want %d", in, got, ok, want)
		}
	}
}

// FuzzEventErrorStatus checks the one payload this package decodes itself
// (the SDK decodes the chunks): an in-stream error event.
func FuzzEventErrorStatus(f *testing.F) {
	for _, s := range []string{`{"error":{"code":400}}`, `{"error":{"code":"429"}}`, `{"error":{"code":null}}`, `{"error":[]}`, `[DONE]`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		code, ok := eventErrorStatus(data)
		if ok != (code != 0) || ok && (code < 100 || code > 599) {
			t.Fatalf("%q: %d %v", data, code, ok)
		}
	})
}

// FuzzArgsJSON checks that whatever argument text a server streams, the
// call's Args are valid JSON (the history must stay marshalable).
func FuzzArgsJSON(f *testing.F) {
	for _, s := range []string{``, ` `, `{}`, `{"a":1}`, `{"a":`, `"x"`, "\xff", `[1,2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out := argsJSON(append([]byte(nil), data...))
		if !json.Valid(out) {
			t.Fatalf("%q -> invalid %q", data, out)
		}
		if _, err := json.Marshal(struct{ A json.RawMessage }{out}); err != nil {
			t.Fatal(err)
		}
	})
}
