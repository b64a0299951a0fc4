package agentfile

import (
	"errors"
	"strings"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
)

const withOAuth = `name: authed
model: {provider: scripted, demo: true}
tools:
  mcp:
    - url: https://notes.example.com/mcp
      name: notes
      oauth: {}
    - url: https://crm.example.com/mcp
      oauth:
        client_id: infinity-local
        client_secret: {env: CRM_CLIENT_SECRET}
        scopes: [crm.read, crm.write]
      headers:
        X-Team: {env: CRM_TEAM}
    - https://plain.example.com/mcp
`

// The oauth block: empty (every default) or with a client registered
// beforehand, its secret from the environment, and scopes; entries
// without it have none; the secret resolves when asked, never quoted.
func TestOAuthBlock(t *testing.T) {
	f, err := Parse("authed.yaml", []byte(withOAuth))
	if err != nil {
		t.Fatal(err)
	}
	notes, crm, plain := f.Tools.MCPServers[0], f.Tools.MCPServers[1], f.Tools.MCPServers[2]
	if notes.OAuth == nil || notes.OAuth.ClientID != "" || notes.OAuth.ClientSecret != nil || len(notes.OAuth.Scopes) != 0 {
		t.Errorf("notes: %+v", notes.OAuth)
	}
	if crm.OAuth == nil || crm.OAuth.ClientID != "infinity-local" || crm.OAuth.ClientSecret.Env != "CRM_CLIENT_SECRET" ||
		strings.Join(crm.OAuth.Scopes, " ") != "crm.read crm.write" {
		t.Errorf("crm: %+v", crm.OAuth)
	}
	if plain.OAuth != nil {
		t.Errorf("plain: %+v", plain.OAuth)
	}
	if s, err := notes.ResolveOAuth(); s != "" || err != nil {
		t.Errorf("notes secret: %q %v", s, err)
	}
	t.Setenv("CRM_CLIENT_SECRET", "crm-secret-9")
	if s, err := crm.ResolveOAuth(); s != "crm-secret-9" || err != nil {
		t.Errorf("crm secret: %q %v", s, err)
	}
	t.Setenv("CRM_CLIENT_SECRET", "")
	_, err = crm.ResolveOAuth()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "authed.yaml:11:9: tools.mcp[1].oauth.client_secret: environment variable CRM_CLIENT_SECRET is empty") {
		t.Errorf("unset secret: %v", err)
	}

	// The functions refuse what only the daemon can do.
	err = f.RefuseDaemonOnly()
	for _, want := range []string{
		"authed.yaml:7:7: tools.mcp[0].oauth: MCP servers that need the user's authorization (oauth) run only in the daemon",
		"authed.yaml:9:7: tools.mcp[1].oauth: MCP servers that need the user's authorization (oauth) run only in the daemon",
	} {
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("RefuseDaemonOnly = %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "tools.mcp[2]") {
		t.Errorf("RefuseDaemonOnly refuses a plain server: %v", err)
	}
}

func TestOAuthBlockErrors(t *testing.T) {
	const head = "name: a\nmodel: {provider: scripted, demo: true}\ntools:\n  mcp:\n"
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unknown field", "    - url: http://x\n      oauth: {client: a}\n",
			[]string{`:6:15: tools.mcp[0].oauth.client: unknown field "client" (known fields: client_id, client_secret, scopes)`}},
		{"not a mapping", "    - url: http://x\n      oauth: yes\n",
			[]string{`:6:14: tools.mcp[0].oauth: want a mapping, got "yes"`}},
		{"local server", "    - command: npx\n      oauth: {}\n",
			[]string{`:6:7: tools.mcp[0].oauth: only a remote server (url) takes oauth`}},
		{"secret in the file", "    - url: http://x\n      oauth: {client_id: a, client_secret: s3cret}\n",
			[]string{`tools.mcp[0].oauth.client_secret: a client secret comes from the environment or a file, never from the agent file`}},
		{"secret without a client", "    - url: http://x\n      oauth: {client_secret: {env: S}}\n",
			[]string{`tools.mcp[0].oauth.client_secret: a client secret goes with a client_id`}},
		{"secret field typo", "    - url: http://x\n      oauth: {client_id: a, client_secret: {evn: S}}\n",
			[]string{`tools.mcp[0].oauth.client_secret.evn: unknown field "evn" (did you mean "env"?)`}},
		{"empty client id", "    - url: http://x\n      oauth: {client_id: \" \"}\n",
			[]string{`tools.mcp[0].oauth.client_id: want a client id`}},
		{"bad scope", "    - url: http://x\n      oauth: {scopes: [\"a b\"]}\n",
			[]string{`tools.mcp[0].oauth.scopes[0]: "a b" is not a scope`}},
		{"non-ASCII scope", "    - url: http://x\n      oauth: {scopes: [\"notes.lecture\u00e9\"]}\n",
			[]string{`tools.mcp[0].oauth.scopes[0]: "notes.lectureé" is not a scope`}},
		{"authorization header beside oauth", "    - url: http://x\n      oauth: {}\n      headers:\n        authorization: {env: T}\n",
			[]string{`tools.mcp[0].headers.authorization: the authorization flow (oauth) sets Authorization`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.yaml", []byte(head+tt.in))
			if err == nil {
				t.Fatal("parsed")
			}
			msg := err.Error()
			if lines := strings.Split(msg, "\n"); len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(lines), len(tt.want), msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("want %q in\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("the error quotes the secret: %s", msg)
			}
		})
	}
}

func TestSchemaOAuth(t *testing.T) {
	defs := schemaMap(t)["$defs"].(map[string]any)
	p := defs["mcp_server"].(map[string]any)["properties"].(map[string]any)["oauth"].(map[string]any)["properties"].(map[string]any)
	for name := range fields["tools.mcp[].oauth"] {
		if _, ok := p[name]; !ok {
			t.Errorf("schema's oauth lacks %s", name)
		}
	}
	if len(p) != len(fields["tools.mcp[].oauth"]) {
		t.Errorf("schema's oauth has %d fields, the parser %d", len(p), len(fields["tools.mcp[].oauth"]))
	}
}
