package rap

import (
	"errors"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

var validCallbacks = map[string]string{
	"tool_result text":          `{"type":"tool_result","group_id":"th_root_1","id":"toolu_01Aa","call_id":null,"text":"Forecast for Oslo: 4°C"}`,
	"tool_result display":       `{"type":"tool_result","group_id":"th_root_1","id":"toolu_01Bb","text":"Patched","display_as":[{"type":"diff","content":{"path":"a.go","patch":"+x"}},{"type":"text","content":"edit"},{"type":"weird","content":1}]}`,
	"tool_result content":       `{"type":"tool_result","group_id":"th_root_1","id":"toolu_01Cc","content":[{"type":"text","text":"shot"},{"type":"image","data":"iVBO","mediaType":"image/png"}]}`,
	"tool_result subscription":  `{"type":"tool_result","group_id":"t1","id":"c1","text":"ok","subscription":true,"extra":"tolerated"}`,
	"tool_result empty text":    `{"type":"tool_result","group_id":"t1","id":"c1","text":""}`,
	"subscription_event":        `{"type":"subscription_event","group_id":"t1","tool_call_id":"c1","text":"{\"level\":\"red\"}","associative":true,"final":false}`,
	"subscription_event final":  `{"type":"subscription_event","group_id":"t1","tool_call_id":"c1","text":"","final":true}`,
	"oauth":                     `{"type":"oauth","group_id":"t1","id":"c1","call_id":"x","auth_url":"https://auth.example/authorize?x=1"}`,
	"user_choice":               `{"type":"user_choice","group_id":"t1","id":"c1","prompt":"Deploy?","choices":["yes","no"],"default":1,"response_url":"http://127.0.0.1:1/choice"}`,
	"view_update":               `{"type":"view_update","group_id":"t1","view_type":"diff","content":{"files":[]}}`,
	"view_update empty content": `{"type":"view_update","group_id":"t1","view_type":"diff","content":{}}`,
}

func TestDecodeCallbackValid(t *testing.T) {
	for name, body := range validCallbacks {
		t.Run("8 "+name, func(t *testing.T) {
			c, err := DecodeCallback([]byte(body))
			if err != nil {
				t.Fatalf("DecodeCallback: %v", err)
			}
			if c.Group() == "" {
				t.Fatal("no group")
			}
			if c.Type != TypeViewUpdate && c.CallID() == "" {
				t.Fatal("no call id")
			}
		})
	}
}

func TestDecodeCallbackInvalid(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"not json", `nope`, "callback"},
		{"array", `[]`, "callback"},
		{"no type", `{"group_id":"t1"}`, `"type"`},
		{"type not string", `{"type":1}`, `"type"`},
		{"unknown type", `{"type":"tool_error","group_id":"t1","id":"c"}`, `"type"`},
		{"result no group", `{"type":"tool_result","id":"c","text":"x"}`, `"group_id"`},
		{"result null group", `{"type":"tool_result","group_id":null,"id":"c","text":"x"}`, `"group_id"`},
		{"result bad group", `{"type":"tool_result","group_id":"a b","id":"c","text":"x"}`, `"group_id"`},
		{"result no id", `{"type":"tool_result","group_id":"t1","text":"x"}`, `"id"`},
		{"result empty id", `{"type":"tool_result","group_id":"t1","id":"","text":"x"}`, `"id"`},
		{"result id number", `{"type":"tool_result","group_id":"t1","id":5,"text":"x"}`, `"id"`},
		{"result no text nor content", `{"type":"tool_result","group_id":"t1","id":"c"}`, `"text"`},
		{"result empty content no text", `{"type":"tool_result","group_id":"t1","id":"c","content":[]}`, `"text"`},
		{"result text number", `{"type":"tool_result","group_id":"t1","id":"c","text":3}`, `"text"`},
		{"result content object", `{"type":"tool_result","group_id":"t1","id":"c","content":{"type":"text"}}`, `"content"`},
		{"result content bad item", `{"type":"tool_result","group_id":"t1","id":"c","content":[{"type":"video"}]}`, `"type"`},
		{"result image no data", `{"type":"tool_result","group_id":"t1","id":"c","content":[{"type":"image","mediaType":"image/png"}]}`, `"data"`},
		{"result text item no text", `{"type":"tool_result","group_id":"t1","id":"c","content":[{"type":"text"}]}`, `"text"`},
		{"result call_id number", `{"type":"tool_result","group_id":"t1","id":"c","text":"x","call_id":1}`, `"call_id"`},
		{"result subscription string", `{"type":"tool_result","group_id":"t1","id":"c","text":"x","subscription":"yes"}`, `"subscription"`},
		{"result segment no content", `{"type":"tool_result","group_id":"t1","id":"c","text":"x","display_as":[{"type":"text"}]}`, `"content"`},
		{"event no tool_call_id", `{"type":"subscription_event","group_id":"t1","text":"x"}`, `"tool_call_id"`},
		{"event no text", `{"type":"subscription_event","group_id":"t1","tool_call_id":"c"}`, `"text"`},
		{"event final string", `{"type":"subscription_event","group_id":"t1","tool_call_id":"c","text":"x","final":"true"}`, `"final"`},
		{"event associative number", `{"type":"subscription_event","group_id":"t1","tool_call_id":"c","text":"x","associative":1}`, `"associative"`},
		{"oauth no url", `{"type":"oauth","group_id":"t1","id":"c"}`, `"auth_url"`},
		{"oauth relative url", `{"type":"oauth","group_id":"t1","id":"c","auth_url":"/login"}`, `"auth_url"`},
		{"choice no prompt", `{"type":"user_choice","group_id":"t1","id":"c","choices":["a"],"default":0,"response_url":"http://x/"}`, `"prompt"`},
		{"choice no choices", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","default":0,"response_url":"http://x/"}`, `"choices"`},
		{"choice empty choices", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","choices":[],"default":0,"response_url":"http://x/"}`, `"choices"`},
		{"choice number choice", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","choices":[1],"default":0,"response_url":"http://x/"}`, `"choices"`},
		{"choice no default", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","choices":["a"],"response_url":"http://x/"}`, `"default"`},
		{"choice default out of range", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","choices":["a"],"default":1,"response_url":"http://x/"}`, `"default"`},
		{"choice default negative", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","choices":["a"],"default":-1,"response_url":"http://x/"}`, `"default"`},
		{"choice default fraction", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","choices":["a","b"],"default":0.5,"response_url":"http://x/"}`, `"default"`},
		{"choice default string", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","choices":["a"],"default":"0","response_url":"http://x/"}`, `"default"`},
		{"choice no response_url", `{"type":"user_choice","group_id":"t1","id":"c","prompt":"p","choices":["a"],"default":0}`, `"response_url"`},
		{"view no view_type", `{"type":"view_update","group_id":"t1","content":{}}`, `"view_type"`},
		{"view no content", `{"type":"view_update","group_id":"t1","view_type":"diff"}`, `"content"`},
		{"view content array", `{"type":"view_update","group_id":"t1","view_type":"diff","content":[]}`, `"content"`},
		{"view no group", `{"type":"view_update","view_type":"diff","content":{}}`, `"group_id"`},
	}
	for _, tc := range cases {
		t.Run("8 "+tc.name, func(t *testing.T) {
			_, err := DecodeCallback([]byte(tc.body))
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err %q does not name %s", err, tc.field)
			}
		})
	}
}

func FuzzDecodeCallback(f *testing.F) {
	for _, b := range validCallbacks {
		f.Add([]byte(b))
	}
	f.Add([]byte(`{"type":"user_choice","default":1e400}`))
	f.Add([]byte(`{"type":"tool_result","group_id":"t","id":"c","content":[null]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCallback(body)
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !infinity.ValidThreadID(c.Group()) {
			t.Fatalf("accepted group %q", c.Group())
		}
		m, err := c.Message()
		if c.Type == TypeViewUpdate {
			if !errors.Is(err, ErrNotMessage) {
				t.Fatalf("view_update Message err = %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Message: %v", err)
		}
		if m.ID == "" || len(m.ID) > maxMessageID {
			t.Fatalf("message id %q", m.ID)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("converted message invalid: %v", err)
		}
	})
}
