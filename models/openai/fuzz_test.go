package openai

import (
	"encoding/json"
	"testing"
)

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
