package rap

import (
	"errors"
	"strings"
	"testing"

	"github.com/infinity-runtime/infinity"
)

const weatherManifest = `{
  "name": "weather",
  "description": "Forecasts and weather alerts",
  "endpoint": "https://weather.internal.example/invoke",
  "tools": [
    {"name": "get_forecast", "description": "Three-day forecast for a city",
     "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
     "annotations": {"readOnly": true, "idempotent": true, "x-acme-priority": 3},
     "displayScript": "\"Forecast for \" + args.city"},
    {"name": "watch_alerts", "description": "Subscribe to severe-weather alerts",
     "inputSchema": {"type": "object", "properties": {"region": {"type": "string"}}, "required": ["region"]},
     "annotations": {"longRunning": true}}
  ]
}`

// manifestWith returns a one-tool manifest with fields replaced.
func manifestWith(top, tool string) string {
	if top == "" {
		top = `"name":"ts","endpoint":"http://127.0.0.1:9/invoke"`
	}
	if tool == "" {
		tool = `{"name":"t","description":"d","inputSchema":{"type":"object"}}`
	}
	return "{" + top + `,"tools":[` + tool + "]}"
}

func TestDecodeManifestValid(t *testing.T) {
	m, err := DecodeManifest([]byte(weatherManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "weather" || len(m.Tools) != 2 || m.NeedsMigration || m.Tools[0].Annotations["readOnly"] != true {
		t.Fatalf("manifest = %+v", m)
	}
	for _, body := range []string{
		manifestWith(`"name":"`+strings.Repeat("é", 128)+`","endpoint":"https://x.example","needsMigration":true`, ""),
		manifestWith("", `{"name":"`+strings.Repeat("a", 128)+`","description":"d","inputSchema":{"type":"object","additionalProperties":false}}`),
		manifestWith("", `{"name":"A-b_9","description":"d","inputSchema":{}}`),
		manifestWith("", `{"name":"t","description":"d","inputSchema":{"type":["object","null"],"$schema":"https://json-schema.org/draft/2020-12/schema"}}`),
	} {
		if _, err := DecodeManifest([]byte(body)); err != nil {
			t.Errorf("DecodeManifest(%s): %v", body, err)
		}
	}
}

func TestDecodeManifestInvalid(t *testing.T) {
	ok := `{"name":"t","description":"d","inputSchema":{"type":"object"}}`
	cases := []struct {
		name, body, field string
	}{
		{"21 not an object", `"weather"`, "manifest"},
		{"21 name missing", `{"endpoint":"http://x/","tools":[` + ok + `]}`, `"name"`},
		{"21 name empty", manifestWith(`"name":"","endpoint":"http://x/"`, ""), `"name"`},
		{"21 name too long", manifestWith(`"name":"`+strings.Repeat("n", 129)+`","endpoint":"http://x/"`, ""), `"name"`},
		{"21 name not string", manifestWith(`"name":7,"endpoint":"http://x/"`, ""), `"name"`},
		{"21 endpoint missing", `{"name":"ts","tools":[` + ok + `]}`, `"endpoint"`},
		{"21 endpoint relative", manifestWith(`"name":"ts","endpoint":"/invoke"`, ""), `"endpoint"`},
		{"21 endpoint not a url", manifestWith(`"name":"ts","endpoint":"http://[::1"`, ""), `"endpoint"`},
		{"21 endpoint ftp", manifestWith(`"name":"ts","endpoint":"ftp://x/"`, ""), `"endpoint"`},
		{"21 tools missing", `{"name":"ts","endpoint":"http://x/"}`, `"tools"`},
		{"21 tools empty", `{"name":"ts","endpoint":"http://x/","tools":[]}`, `"tools"`},
		{"21 tools object", `{"name":"ts","endpoint":"http://x/","tools":{}}`, `"tools"`},
		{"21 needsMigration string", manifestWith(`"name":"ts","endpoint":"http://x/","needsMigration":"yes"`, ""), `"needsMigration"`},
		{"22 tool name missing", manifestWith("", `{"description":"d","inputSchema":{}}`), `"name"`},
		{"22 tool name empty", manifestWith("", `{"name":"","description":"d","inputSchema":{}}`), `"name"`},
		{"22 tool name too long", manifestWith("", `{"name":"`+strings.Repeat("a", 129)+`","description":"d","inputSchema":{}}`), `"name"`},
		{"22 tool name space", manifestWith("", `{"name":"get forecast","description":"d","inputSchema":{}}`), `"name"`},
		{"22 tool name special", manifestWith("", `{"name":"get.forecast","description":"d","inputSchema":{}}`), `"name"`},
		{"22 tool name unicode", manifestWith("", `{"name":"prévision","description":"d","inputSchema":{}}`), `"name"`},
		{"22 tool name twice", manifestWith("", ok+","+ok), `"tools"`},
		{"22 description missing", manifestWith("", `{"name":"t","inputSchema":{}}`), `"description"`},
		{"22 description empty", manifestWith("", `{"name":"t","description":"","inputSchema":{}}`), `"description"`},
		{"22 inputSchema missing", manifestWith("", `{"name":"t","description":"d"}`), `"inputSchema"`},
		{"22 inputSchema string", manifestWith("", `{"name":"t","description":"d","inputSchema":"object"}`), `"inputSchema"`},
		{"22 inputSchema type string", manifestWith("", `{"name":"t","description":"d","inputSchema":{"type":"string"}}`), `"type"`},
		{"22 inputSchema type number", manifestWith("", `{"name":"t","description":"d","inputSchema":{"type":3}}`), `"type"`},
		{"22 inputSchema properties array", manifestWith("", `{"name":"t","description":"d","inputSchema":{"type":"object","properties":[]}}`), `"properties"`},
		{"22 inputSchema property string", manifestWith("", `{"name":"t","description":"d","inputSchema":{"properties":{"a":"string"}}}`), `"properties"`},
		{"22 inputSchema required numbers", manifestWith("", `{"name":"t","description":"d","inputSchema":{"required":[1]}}`), `"required"`},
		{"22 annotations array", manifestWith("", `{"name":"t","description":"d","inputSchema":{},"annotations":[]}`), `"annotations"`},
		{"22 displayScript number", manifestWith("", `{"name":"t","description":"d","inputSchema":{},"displayScript":1}`), `"displayScript"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeManifest([]byte(tc.body))
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err %q does not name %s", err, tc.field)
			}
		})
	}
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(weatherManifest))
	f.Add([]byte(manifestWith("", "")))
	f.Add([]byte(manifestWith(`"name":"ts","endpoint":"http://x/","needsMigration":true`, `{"name":"a","description":"d","inputSchema":{"type":["object"]}}`)))
	f.Add([]byte(`{"name":"ts","endpoint":"http://x/","tools":[null]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := DecodeManifest(body)
		if err != nil {
			if !errors.Is(err, infinity.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if m.Name == "" || !absURL(m.Endpoint) || len(m.Tools) == 0 {
			t.Fatalf("accepted %+v", m)
		}
		seen := map[string]bool{}
		for _, tool := range m.Tools {
			if !ValidToolName(tool.Name) || seen[tool.Name] || tool.Description == "" || len(tool.InputSchema) == 0 || tool.InputSchema[0] != '{' {
				t.Fatalf("accepted tool %+v", tool)
			}
			seen[tool.Name] = true
		}
	})
}
