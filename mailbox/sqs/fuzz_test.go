package sqs_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
)

var inputSeeds = []string{
	`{"content":{"type":"text","text":"hi"},"group_id":"t1"}`,
	`{"id":"m1","content":{"type":"toolresult","id":"c1","content":[{"type":"text","text":"ok"},{"type":"image","data":"AA==","media_type":"image/png"}]},"group_id":"t1","metadata":{"k":[1,2]},"synthetic":"c1","display_as":[{"type":"text","content":"x"}],"subscription":true}`,
	`{"content":{"type":"user_choice_required","id":"c2","prompt":"p","choices":["a","b"],"default":1,"response_url":"u"},"group_id":"t-2","synthetic":{"type":"thread_report","child_thread_id":"c","final":true}}`,
	`{"content":{"type":"oauth_required","id":"c3","auth_url":"https://x"},"group_id":"t3"}`,
	`{"content":{"type":"text","text":"👋"},"group_id":"t1","synthetic":{"type":"bogus"}}`,
	`{"group_id":"a/b"}`,
	`[]`, `null`, ``, `{`,
}

func FuzzDecodeInput(f *testing.F) {
	for _, s := range inputSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		m, err := sqs.DecodeInput(body)
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded an invalid message: %v", err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := sqs.DecodeInput(string(b)); err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
	})
}

func FuzzDecodeRelay(f *testing.F) {
	for _, s := range inputSeeds {
		f.Add(`{"message":` + s + `,"at":"2026-01-02T03:04:05.5Z"}`)
		f.Add(s)
	}
	f.Add(`{"message":{"id":"m1","group_id":"t1","content":{"type":"text"}}}`)
	f.Add(`{"message":{"id":"m1","group_id":"t1","content":{"type":"text"}},"at":"bad"}`)
	f.Fuzz(func(t *testing.T, body string) {
		m, _, err := sqs.DecodeRelay(body)
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if m.ID == "" || m.Validate() != nil {
			t.Fatalf("decoded a message without id or invalid: %+v", m)
		}
	})
}
