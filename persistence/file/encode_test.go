package file

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/jsonw"
)

// TestFastEncoderCoversTypes fails when a type the hand-written encoder
// spells out gains, loses or changes a field: update encode.go (and
// fastFields) to match. Until then every record goes through json.Marshal.
func TestFastEncoderCoversTypes(t *testing.T) {
	if m := fastTypesMismatch(); m != "" {
		t.Fatalf("encode.go is out of date: %s", m)
	}
}

var tricky = []string{"", "a", "plain text", `quo"te \ back`, "ctl \x00\x01\x1f\b\f\n\r\t", "<html> & ü €", "bad \xff\xfe utf8", "sep \u2028 \u2029", "emoji 😀", strings.Repeat("x", 300)}

var rawValues = []string{`{}`, `{"a": 1, "b" : [1, 2 ,3]}`, "\n{\"s\":\"with space \\\" inside\"}\t", `"str"`, `null`, `[ ]`, `12.5e3`, `true`}

// fill sets v to random values, reaching every field of every struct.
func fill(v reflect.Value, r *rand.Rand, depth int) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		t := time.Unix(r.Int64N(4e9), r.Int64N(1e9))
		if r.IntN(2) == 0 {
			t = t.In(time.FixedZone("", (r.IntN(26)-12)*3600+r.IntN(2)*1800))
		} else {
			t = t.UTC()
		}
		if r.IntN(5) == 0 {
			t = time.Time{}
		}
		v.Set(reflect.ValueOf(t))
		return
	case reflect.TypeFor[json.RawMessage]():
		if r.IntN(6) > 0 {
			v.SetBytes([]byte(rawValues[r.IntN(len(rawValues))]))
		}
		return
	case reflect.TypeFor[infinity.ItemKind]():
		v.SetUint(uint64(1 + r.IntN(5)))
		return
	case reflect.TypeFor[infinity.SyntheticKind]():
		v.SetString(string(infinity.SyntheticContinue))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(tricky[r.IntN(len(tricky))])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if r.IntN(3) > 0 {
			v.SetInt(r.Int64N(1<<40) - 1<<39)
		}
	case reflect.Uint8, reflect.Uint64, reflect.Uint32, reflect.Uint:
		if r.IntN(3) > 0 {
			v.SetUint(r.Uint64() >> (64 - v.Type().Bits()))
		}
	case reflect.Pointer:
		if depth > 0 && r.IntN(4) > 0 {
			p := reflect.New(v.Type().Elem())
			fill(p.Elem(), r, depth-1)
			v.Set(p)
		}
	case reflect.Slice:
		switch r.IntN(4) {
		case 0: // nil
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			if depth <= 0 {
				return
			}
			n := 1 + r.IntN(3)
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				fill(s.Index(i), r, depth-1)
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), r, depth)
			}
		}
	}
}

// TestFastEncoderMatchesJSON checks that records written by the hand-written
// encoder read back exactly as those json.Marshal writes, and fail alike.
func TestFastEncoderMatchesJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	compared := 0
	ops := []string{opCommit, opPut, opMark, opMarkSent, opCreate, opSave, opDrop, opSnapThread, opSnapInbox, opSnapMarks}
	for i := range 4000 {
		var rec record
		fill(reflect.ValueOf(&rec).Elem(), r, 5)
		rec.Op = ops[i%len(ops)]
		want, werr := json.Marshal(&rec)
		got, gerr := appendRecord([]byte("prefix"), &rec)
		if i%2 == 1 { // the fallback for changed types
			w := jsonw.W{Buf: []byte("prefix"), Slow: true}
			writeRecord(&w, &rec)
			got, gerr = w.Buf, w.Err
		}
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("record %d: json.Marshal error %v, fast encoder error %v", i, werr, gerr)
		}
		if werr != nil {
			continue
		}
		if !strings.HasPrefix(string(got), "prefix") {
			t.Fatalf("record %d: buffer prefix lost", i)
		}
		got = got[len("prefix"):]
		if !json.Valid(got) {
			t.Fatalf("record %d: fast encoder wrote invalid JSON:\n%s", i, got)
		}
		var a, b record
		aerr, berr := json.Unmarshal(want, &a), json.Unmarshal(got, &b)
		if (aerr != nil) != (berr != nil) {
			t.Fatalf("record %d: decode errors differ: %v / %v\njson: %s\nfast: %s", i, aerr, berr, want, got)
		}
		if aerr != nil {
			continue
		}
		compared++
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("record %d decodes differently:\njson: %s\nfast: %s", i, want, got)
		}
		// Without HTML escaping the two agree byte for byte.
		if !strings.ContainsAny(string(want), `\`) && string(want) != string(got) {
			t.Fatalf("record %d: bytes differ:\njson: %s\nfast: %s", i, want, got)
		}
	}
	if compared < 2000 {
		t.Fatalf("only %d of 4000 random records could be compared", compared)
	}
}

func TestFastEncoderErrors(t *testing.T) {
	bad := record{Op: opCommit, Commit: &infinity.Commit{Thread: "t", Items: []infinity.Item{{ID: "i", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{Args: json.RawMessage(`{"a":`)}}}}}
	if _, err := appendRecord(nil, &bad); err == nil {
		t.Fatal("invalid args encoded")
	}
	if _, err := encodeRecord(bad); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("encodeRecord: %v", err)
	}
	far := record{Op: opCommit, Commit: &infinity.Commit{Thread: "t", Items: []infinity.Item{{ID: "i", Kind: infinity.KindUser, At: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}}}}
	if _, err := appendRecord(nil, &far); err == nil {
		t.Fatal("year 12000 encoded")
	}
}

func BenchmarkEncodeCommit(b *testing.B) {
	c := benchCommit()
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rb, err := encodeRecord(record{Op: opCommit, Commit: &c})
			if err != nil {
				b.Fatal(err)
			}
			rb.free()
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(record{Op: opCommit, Commit: &c}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchCommit is a slice's commit as the sleep-and-signal benchmark makes
// it: a tool result, the model's next call, and a timed wake-up.
func benchCommit() infinity.Commit {
	at := time.Now()
	wake := infinity.InputMessage{ID: "wake-1", GroupID: "t-0123456789abcdef", Content: infinity.ResultContent("call-1", "Slept for 1.5 seconds.")}
	return infinity.Commit{
		Thread: "t-0123456789abcdef", Expected: 3,
		Items: []infinity.Item{
			{ID: "m-1", Kind: infinity.KindToolResult, Result: &infinity.ToolResult{CallID: "call-1", Parts: []infinity.Part{{Type: "text", Text: "Slept for 1.5 seconds."}}}, At: at},
			{ID: "m-2", Kind: infinity.KindToolCall, Call: &infinity.ToolCall{ID: "call-2", Name: "sleep_until_event_or_input", Args: json.RawMessage(`{}`)}, Usage: &infinity.Usage{Input: 120, Output: 12}, Model: "scripted", At: at},
		},
		Applied: []infinity.MessageID{"wake-0"},
		Outbox:  []infinity.Outgoing{{ID: "o-1", Message: &wake, At: at.Add(time.Second)}},
	}
}
