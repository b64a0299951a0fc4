package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
)

var errBad = errors.New("bad schema")

// encodeName is a stand-in encoding: the spec's fields, refusing a schema
// that is not an object.
func encodeName(s *infinity.ToolSpec) ([]byte, error) {
	if len(s.Schema) > 0 && s.Schema[0] != '{' {
		return nil, errBad
	}
	return json.Marshal([]string{s.Name, s.Description, string(s.Schema)})
}

func TestToolsByContent(t *testing.T) {
	calls := 0
	c := NewTools(3, func(s *infinity.ToolSpec) ([]byte, error) { calls++; return encodeName(s) })
	a := infinity.ToolSpec{Name: "read", Description: "Read.", Schema: json.RawMessage(`{"type":"object"}`)}
	b, d := a, a
	b.Schema = json.RawMessage(`{}`)
	d.Description = "Read a file."
	for round := range 2 { // the second round is answered from the cache
		for _, s := range []*infinity.ToolSpec{&a, &b, &d} {
			got, err := c.Get(s)
			want, _ := encodeName(s)
			if err != nil || string(got) != string(want) {
				t.Fatalf("round %d: Get(%+v) = %s, %v", round, s, got, err)
			}
		}
	}
	if calls != 3 || c.Len() != 3 {
		t.Fatalf("%d encodings made, %d kept; want 3 and 3", calls, c.Len())
	}
	e := infinity.ToolSpec{Name: "e"}
	if _, err := c.Get(&e); err != nil || c.Len() != 1 { // past max: the cache starts again
		t.Fatalf("after a fourth tool: %d kept, %v", c.Len(), err)
	}
	bad := infinity.ToolSpec{Name: "bad", Schema: json.RawMessage(`[1]`)}
	for range 2 { // refused every time, never kept
		if _, err := c.Get(&bad); !errors.Is(err, errBad) || c.Len() != 1 {
			t.Fatalf("bad schema: %v, %d kept", err, c.Len())
		}
	}
	body, err := c.AddTo([]byte(`{"model":"m"}`), "tools", []infinity.ToolSpec{a, e})
	if err != nil || string(body) != `{"model":"m","tools":[["read","Read.","{\"type\":\"object\"}"],["e","",""]]}` {
		t.Fatalf("AddTo: %s, %v", body, err)
	}
	if _, err := c.AddTo([]byte(`{}`), "tools", []infinity.ToolSpec{a, bad}); !errors.Is(err, errBad) {
		t.Fatalf("AddTo with a bad tool: %v", err)
	}
}

// Calls that miss at once (agents starting together with the same tools)
// keep one encoding, not one each: the cache does not fill with copies.
func TestToolsConcurrentMisses(t *testing.T) {
	const n = 8
	var entered sync.WaitGroup
	entered.Add(n)
	c := NewTools(1024, func(s *infinity.ToolSpec) ([]byte, error) {
		entered.Done()
		entered.Wait() // every call has missed before any keeps its encoding
		return encodeName(s)
	})
	spec := infinity.ToolSpec{Name: "read", Schema: json.RawMessage(`{"type":"object"}`)}
	var done sync.WaitGroup
	for range n {
		done.Go(func() {
			if _, err := c.Get(&spec); err != nil {
				t.Error(err)
			}
		})
	}
	done.Wait()
	if c.Len() != 1 {
		t.Fatalf("%d encodings kept of one tool", c.Len())
	}
}

// The cache holds at most MaxToolBytes: a tool past it starts it again.
func TestToolsByteBound(t *testing.T) {
	c := NewTools(1000, encodeName)
	big := strings.Repeat("x", MaxToolBytes/3)
	for i := range 3 {
		s := infinity.ToolSpec{Name: fmt.Sprint(i), Description: big}
		if _, err := c.Get(&s); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 1 {
		t.Fatalf("%d kept after three tools of a third of the bound each (with their encodings), want 1", c.Len())
	}
}

// AddWrapped nests the encodings, after the object's last member or as its
// first.
func TestAddWrapped(t *testing.T) {
	c := NewTools(8, func(s *infinity.ToolSpec) ([]byte, error) { return []byte(`{"n":"` + s.Name + `"}`), nil })
	specs := []infinity.ToolSpec{{Name: "a"}, {Name: "b"}}
	for body, want := range map[string]string{
		`{"m":1}`: `{"m":1,"cfg":{"tools":[{"n":"a"},{"n":"b"}]}}`,
		`{}`:      `{"cfg":{"tools":[{"n":"a"},{"n":"b"}]}}`,
		`{ }`:     `{ "cfg":{"tools":[{"n":"a"},{"n":"b"}]}}`,
	} {
		got, err := c.AddWrapped([]byte(body), `"cfg":{"tools":[`, `]}`, specs)
		if err != nil || string(got) != want {
			t.Errorf("%s: %s, %v; want %s", body, got, err, want)
		}
	}
}
