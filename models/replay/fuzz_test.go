package replay

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/infinity-runtime/infinity"
)

const fuzzSeed = `{"format":"infinity-replay","version":1,"created":"2026-12-07T10:00:00Z","models":["default/m"],"meta":{"agent":"a"}}
{"type":"models","provider":"default","models":[{"id":"m","context_window":1000,"max_output":100}]}
{"type":"call","seq":1,"provider":"default","thread":"taaaaaaaaaaaaaaaaaaaa","stack":["taaaaaaaaaaaaaaaaaaaa"],"key":"sha256:00","request":{"model":"m","max_tokens":100,"system":"Your thread ID is taaaaaaaaaaaaaaaaaaaa.","tools":[{"name":"clock","description":"d","schema":{"type":"object"}}],"items":[{"kind":"user","text":"hi at 2026-01-02T03:04:05Z"}]},"response":{"text":"Hello taaaaaaaaaaaaaaaaaaaa.","calls":[{"id":"c1","name":"close_thread","args":{"thread_id":"taaaaaaaaaaaaaaaaaaaa"}}],"usage":{"input":10,"output":2},"stop":"tool_use"}}
{"type":"call","seq":2,"provider":"default","thread":"taaaaaaaaaaaaaaaaaaaa","stack":["taaaaaaaaaaaaaaaaaaaa"],"key":"sha256:01","request":{"items":[{"kind":"user","text":"hi"},{"kind":"tool_call","call":{"id":"c1","name":"x","args_text":"{bad"}},{"kind":"tool_result","result":{"call_id":"c1","parts":[{"type":"text","text":"ok"},{"type":"image","media_type":"image/png","sha256":"ab","size":2}],"is_error":true}}]},"error":{"message":"overloaded","retryable":true,"rate_limited":true,"retry_after_ms":1500}}
`

// FuzzDecode: any input decodes or fails with ErrFormat, never panics; a
// decoded recording encodes to a fixed point; and serving it, asked its
// own requests and others, never panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(fuzzSeed))
	f.Add([]byte(fuzzSeed[:len(fuzzSeed)-30])) // torn
	f.Add([]byte(""))
	f.Add([]byte(`{"format":"infinity-replay","version":1}` + "\n\n"))
	f.Add([]byte(`{"format":"infinity-replay","version":1}` + "\n" + `{"type":"call","response":{"stop":"end_turn"},"request":{"items":[{"kind":"summary"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := Decode(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		var once, twice bytes.Buffer
		if err := rec.Encode(&once); err != nil {
			t.Fatalf("encode a decoded recording: %v", err)
		}
		again, err := Decode(bytes.NewReader(once.Bytes()))
		if err != nil {
			t.Fatalf("decode an encoded recording: %v\n%s", err, once.Bytes())
		}
		if err := again.Encode(&twice); err != nil || !bytes.Equal(once.Bytes(), twice.Bytes()) {
			t.Fatalf("not a fixed point (%v):\n%s\n%s", err, once.Bytes(), twice.Bytes())
		}

		pl := NewPlayer(rec)
		ctx := context.Background()
		for _, c := range rec.Calls {
			p := pl.Provider(c.Provider)
			p.Models(ctx)
			req := completion(c)
			for range 2 { // the second may be a miss: asked more than recorded
				for _, err := range p.Stream(ctx, req) {
					if err != nil {
						break
					}
				}
			}
			req.System += " changed"
			for _, err := range p.Stream(ctx, req) {
				if err != nil && !errors.Is(err, ErrNotRecorded) {
					t.Fatalf("a changed request: %v", err)
				}
			}
		}
		pl.Unused()
		rec.Roots()
	})
}

// completion makes the request a recorded call was asked, as far as the
// recording keeps it (images are lost: their data is not kept).
func completion(c Call) infinity.CompletionRequest {
	req := infinity.CompletionRequest{Model: c.Request.Model, MaxTokens: c.Request.MaxTokens, System: c.Request.System,
		Thread: c.Thread, Stack: c.Stack}
	for _, tl := range c.Request.Tools {
		req.Tools = append(req.Tools, infinity.ToolSpec{Name: tl.Name, Description: tl.Description, Schema: tl.Schema})
	}
	for _, it := range c.Request.Items {
		item := infinity.Item{Kind: it.Kind, Text: it.Text}
		if it.Call != nil {
			item.Call = it.Call.toolCall()
		}
		if it.Result != nil {
			res := &infinity.ToolResult{CallID: it.Result.CallID, IsError: it.Result.IsError}
			for _, p := range it.Result.Parts {
				res.Parts = append(res.Parts, infinity.Part{Type: p.Type, Text: p.Text, MediaType: p.MediaType})
			}
			item.Result = res
		}
		req.Items = append(req.Items, item)
	}
	return req
}
