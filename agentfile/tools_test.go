package agentfile

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

const withTools = `name: tooled
model: {provider: scripted, demo: true}
tools:
  rap:
    - http://127.0.0.1:9000
    - url: https://rap.example.com
      timeout: {connect: 5s, call: 1m}
    - command: infinity
      args: [tools, serve, --port, "0"]
    - command: ~/bin/rap-server
      name: fixed
      args: [--listen, "127.0.0.1:{port}"]
      env: {FOO: bar, TOKEN: {env: RAP_TOKEN}}
      port: 9400
      idle: 1h
      timeout: {connect: 1m, call: 10s}
  mcp:
    - https://example.com/mcp            # as before
    - url: https://api.example.com/mcp
      name: github
      headers:
        Authorization: {env: GITHUB_MCP_TOKEN, prefix: "Bearer "}
        X-Team: {file: ~/secrets/team}
      timeout: {connect: 10s, call: 2m}
    - command: npx
      args: [-y, "@modelcontextprotocol/server-everything"]
      env: {FOO: bar, TOKEN: {env: EVERYTHING_TOKEN}}
      timeout: {call: 5m}
      idle: 15m
`

func TestTools(t *testing.T) {
	f, err := Parse("tooled.yaml", []byte(withTools))
	if err != nil {
		t.Fatal(err)
	}
	tt := f.Tools
	if !reflect.DeepEqual(tt.RAP, []string{"http://127.0.0.1:9000", "https://rap.example.com"}) ||
		!reflect.DeepEqual(tt.MCP, []string{"https://example.com/mcp", "https://api.example.com/mcp"}) {
		t.Fatalf("URLs: rap %q, mcp %q", tt.RAP, tt.MCP)
	}
	if r := tt.RAPServers[1]; r.Timeout.ConnectDuration() != 5*time.Second || r.Timeout.CallDuration() != time.Minute || r.Local() || r.Label() != "https://rap.example.com" {
		t.Errorf("rap[1] = %+v", r)
	}
	if len(tt.RAPServers) != 4 {
		t.Fatalf("rap servers: %+v", tt.RAPServers)
	}
	if r := tt.RAPServers[2]; !r.Local() || r.Label() != "infinity" || r.Field() != "tools.rap[2]" || r.Port != 0 || r.IdleDuration() != 0 ||
		!reflect.DeepEqual(r.Args, []string{"tools", "serve", "--port", "0"}) {
		t.Errorf("rap[2] = %+v", r)
	}
	if r := tt.RAPServers[3]; !r.Local() || r.Label() != "fixed" || r.Port != 9400 || r.IdleDuration() != time.Hour ||
		r.Timeout.ConnectDuration() != time.Minute || r.Timeout.CallDuration() != 10*time.Second ||
		r.Env["FOO"].Literal != "bar" || r.Env["TOKEN"].Env != "RAP_TOKEN" || r.Args[1] != "127.0.0.1:{port}" {
		t.Errorf("rap[3] = %+v", r)
	}
	if len(tt.MCPServers) != 3 {
		t.Fatalf("mcp servers: %+v", tt.MCPServers)
	}
	plain, gh, local := tt.MCPServers[0], tt.MCPServers[1], tt.MCPServers[2]
	if plain.Local() || plain.Label() != "https://example.com/mcp" || plain.Timeout != (Timeout{}) {
		t.Errorf("mcp[0] = %+v", plain)
	}
	if gh.Label() != "github" || gh.Field() != "tools.mcp[1]" || gh.Timeout.ConnectDuration() != 10*time.Second || gh.Timeout.CallDuration() != 2*time.Minute ||
		gh.Headers["Authorization"].Env != "GITHUB_MCP_TOKEN" || gh.Headers["Authorization"].Prefix != "Bearer " || gh.Headers["X-Team"].File != "~/secrets/team" {
		t.Errorf("mcp[1] = %+v", gh)
	}
	if !local.Local() || local.Label() != "npx" || !reflect.DeepEqual(local.Args, []string{"-y", "@modelcontextprotocol/server-everything"}) ||
		local.Env["FOO"].Literal != "bar" || local.Env["TOKEN"].Env != "EVERYTHING_TOKEN" ||
		local.Timeout.CallDuration() != 5*time.Minute || local.IdleDuration() != 15*time.Minute {
		t.Errorf("mcp[2] = %+v", local)
	}
	err = f.RefuseDaemonOnly()
	for _, want := range []string{
		"tooled.yaml:8:16: tools.rap[2].command: local RAP servers (command) run only in the daemon",
		"tooled.yaml:10:16: tools.rap[3].command: local RAP servers (command) run only in the daemon",
		"tooled.yaml:25:16: tools.mcp[2].command: local MCP servers (command) run only in the daemon",
	} {
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("RefuseDaemonOnly = %v, want %q", err, want)
		}
	}
	if err := plainFile(t).RefuseDaemonOnly(); err != nil {
		t.Errorf("RefuseDaemonOnly of a file without local servers = %v", err)
	}
}

func plainFile(t *testing.T) *File {
	t.Helper()
	f, err := Parse("a.yaml", []byte("name: a\nmodel: {provider: scripted, demo: true}\ntools: {mcp: [http://x]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestToolsErrors(t *testing.T) {
	const ok = "name: a\nmodel:\n  provider: scripted\n  demo: true\ntools:\n"
	mcp := ok + "  mcp:\n"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"not a list", ok + "  mcp: http://x\n",
			[]string{`:6:8: tools.mcp: want a list of URLs and mappings, got "http://x"`}},
		{"entry of another type", mcp + "    - 5\n",
			[]string{`:7:7: tools.mcp[0]: want a string or a mapping, got the integer 5`}},
		{"neither url nor command", mcp + "    - name: x\n",
			[]string{`:7:7: tools.mcp[0]: required: url (a remote server) or command (a local one)`}},
		{"url and command", mcp + "    - url: http://x\n      command: npx\n",
			[]string{`:8:16: tools.mcp[0].command: set either url (a remote server) or command (a local one), not both`}},
		{"bad url in a mapping", mcp + "    - url: ftp://x\n",
			[]string{`:7:12: tools.mcp[0].url: "ftp://x": want an http or https URL`}},
		{"listed twice", mcp + "    - http://x\n    - url: http://x\n",
			[]string{`:8:12: tools.mcp[1].url: the server http://x is listed twice (also tools.mcp[0])`}},
		{"unknown field", mcp + "    - url: http://x\n      header: {}\n",
			[]string{`:8:7: tools.mcp[0].header: unknown field "header" (did you mean "headers"?)`}},
		{"header written in the file", mcp + "    - url: http://x\n      headers: {X-Team: blue}\n",
			[]string{`:8:25: tools.mcp[0].headers.X-Team: a header's value comes from the environment or a file, never from the agent file: write {env: NAME} or {file: PATH}`}},
		{"header without a source", mcp + "    - url: http://x\n      headers:\n        X-Team: {prefix: a}\n",
			[]string{`:9:9: tools.mcp[0].headers.X-Team: set env (the variable that holds the value) or file (the file that does)`}},
		{"header with both sources", mcp + "    - url: http://x\n      headers:\n        X-Team: {env: A, file: /b}\n",
			[]string{`:9:32: tools.mcp[0].headers.X-Team.file: set either env or file, not both`}},
		{"header field typo", mcp + "    - url: http://x\n      headers:\n        X-Team: {evn: A}\n",
			[]string{`:9:18: tools.mcp[0].headers.X-Team.evn: unknown field "evn" (did you mean "env"?)`}},
		{"bad variable name", mcp + "    - url: http://x\n      headers:\n        X-Team: {env: 1A}\n",
			[]string{`:9:23: tools.mcp[0].headers.X-Team.env: "1A" is not a variable name`}},
		{"relative file", mcp + "    - url: http://x\n      headers:\n        X-Team: {file: secrets/team}\n",
			[]string{`:9:24: tools.mcp[0].headers.X-Team.file: "secrets/team": want an absolute path or one starting with ~/`}},
		{"prefix with a line break", mcp + "    - url: http://x\n      headers:\n        X-Team: {env: A, prefix: \"a\\nb\"}\n",
			[]string{`:9:34: tools.mcp[0].headers.X-Team.prefix: a prefix may not hold a line break or a NUL byte`}},
		{"reserved header", mcp + "    - url: http://x\n      headers:\n        content-type: {env: A}\n",
			[]string{`:9:9: tools.mcp[0].headers.content-type: content-type is set by the MCP transport itself`}},
		{"header twice", mcp + "    - url: http://x\n      headers:\n        X-Team: {env: A}\n        x-team: {env: B}\n",
			[]string{`:10:9: tools.mcp[0].headers.x-team: x-team is also set as X-Team (header names are not case-sensitive)`}},
		{"bad header name", mcp + "    - url: http://x\n      headers:\n        \"X Team\": {env: A}\n",
			[]string{`:9:9: tools.mcp[0].headers.X Team: "X Team" is not a header name`}},
		{"headers of a local server", mcp + "    - command: npx\n      headers: {A: {env: B}}\n",
			[]string{`:8:7: tools.mcp[0].headers: only a remote server (url) takes headers; give a local server its credentials in env`}},
		{"local fields on a remote server", mcp + "    - url: http://x\n      args: [a]\n      idle: 1m\n      env: {A: b}\n",
			[]string{
				`:8:13: tools.mcp[0].args: only a local server (command) takes args`,
				`:9:13: tools.mcp[0].idle: only a local server (command) takes idle`,
				`:10:7: tools.mcp[0].env: only a local server (command) takes env`,
			}},
		{"bad variable of a local server", mcp + "    - command: npx\n      env: {1A: b}\n",
			[]string{`:8:13: tools.mcp[0].env.1A: "1A" is not a variable name`}},
		{"variable without a source", mcp + "    - command: npx\n      env: {A: {}}\n",
			[]string{`:8:13: tools.mcp[0].env.A: set env (the variable that holds the value) or file (the file that does)`}},
		{"argument of another type", mcp + "    - command: npx\n      args: [-y, 1]\n",
			[]string{`:8:18: tools.mcp[0].args[1]: want a string, got the integer 1`}},
		{"relative command", mcp + "    - command: ./server\n",
			[]string{`:7:16: tools.mcp[0].command: "./server": want a name looked up in PATH, an absolute path or one starting with ~/`}},
		{"empty command", mcp + "    - command: \" \"\n",
			[]string{`:7:16: tools.mcp[0].command: required: the program to start`}},
		{"timeouts", mcp + "    - url: http://x\n      timeout: {connect: soon, call: 2h}\n",
			[]string{
				`:8:26: tools.mcp[0].timeout.connect: "soon" is not a Go duration (such as 90s or 5m)`,
				`:8:38: tools.mcp[0].timeout.call: 2h0m0s is out of range: want 1s to 1h`,
			}},
		{"idle out of range", mcp + "    - command: npx\n      idle: 1s\n",
			[]string{`:8:13: tools.mcp[0].idle: 1s is out of range: want 10s to 24h`}},
		{"bad name", mcp + "    - url: http://x\n      name: \"my server\"\n",
			[]string{`:8:13: tools.mcp[0].name: "my server" is not a valid name`}},
		{"name twice", mcp + "    - {url: http://x, name: gh}\n    - {command: npx, name: gh}\n",
			[]string{`:8:28: tools.mcp[1].name: the name gh is taken (also tools.mcp[0].name)`}},
		{"rap mapping without url", ok + "  rap:\n    - timeout: {call: 1m}\n",
			[]string{`:7:7: tools.rap[0]: required: url (a remote server's base URL) or command (a local one the daemon starts)`}},
		{"rap field of mcp", ok + "  rap:\n    - url: http://x\n      headers: {}\n",
			[]string{`:8:7: tools.rap[0].headers: unknown field "headers" (known fields: url, name, timeout, command, args, env, port, idle)`}},
		{"rap url and command", ok + "  rap:\n    - url: http://x\n      command: srv\n",
			[]string{`:8:16: tools.rap[0].command: set either url (a remote server) or command (a local one the daemon starts), not both`}},
		{"rap local fields on a remote server", ok + "  rap:\n    - url: http://x\n      args: [a]\n      port: 80\n      idle: 1m\n      env: {A: b}\n",
			[]string{
				`:8:13: tools.rap[0].args: only a local server (command) takes args`,
				`:9:13: tools.rap[0].port: only a local server (command) takes port`,
				`:10:13: tools.rap[0].idle: only a local server (command) takes idle`,
				`:11:7: tools.rap[0].env: only a local server (command) takes env`,
			}},
		{"rap port out of range", ok + "  rap:\n    - command: srv\n      port: 70000\n",
			[]string{`:8:13: tools.rap[0].port: 70000 is out of range: want 1 to 65535`}},
		{"rap port of another type", ok + "  rap:\n    - command: srv\n      port: \"80\"\n",
			[]string{`:8:13: tools.rap[0].port: want an integer, got "80"`}},
		{"rap {port} without port", ok + "  rap:\n    - command: srv\n      args: [--port, \"{port}\"]\n",
			[]string{`:8:22: tools.rap[0].args[1]: {port} stands for port, which is not set`}},
		{"rap INFINITY_PORT with port", ok + "  rap:\n    - command: srv\n      port: 9400\n      env: {INFINITY_PORT: \"1\"}\n",
			[]string{`:9:28: tools.rap[0].env.INFINITY_PORT: INFINITY_PORT is set by the daemon to the port (port)`}},
		{"rap bad variable", ok + "  rap:\n    - command: srv\n      env: {1A: b}\n",
			[]string{`:8:13: tools.rap[0].env.1A: "1A" is not a variable name`}},
		{"rap relative command", ok + "  rap:\n    - command: ./srv\n",
			[]string{`:7:16: tools.rap[0].command: "./srv": want a name looked up in PATH, an absolute path or one starting with ~/`}},
		{"rap idle out of range", ok + "  rap:\n    - command: srv\n      idle: 48h\n",
			[]string{`:8:13: tools.rap[0].idle: 48h0m0s is out of range: want 10s to 24h`}},
		{"rap two local servers of one name", ok + "  rap:\n    - command: srv\n    - command: ~/srv\n",
			[]string{`:8:16: tools.rap[1].command: this local server would be called srv, like tools.rap[0]: give one of them a name`}},
		{"rap name twice", ok + "  rap:\n    - {url: http://x, name: a}\n    - {command: srv, name: a}\n",
			[]string{`:8:28: tools.rap[1].name: the name a is taken (also tools.rap[0].name)`}},
		{"rap timeout", ok + "  rap:\n    - url: http://x\n      timeout: {connect: 20m}\n",
			[]string{`:8:26: tools.rap[0].timeout.connect: 20m0s is out of range: want 1s to 10m`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("a.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error; got %+v", f.Tools)
			}
			if !errors.Is(err, infinity.ErrInvalid) || f != nil {
				t.Errorf("error %v does not wrap ErrInvalid, or a File came with it", err)
			}
			msg := err.Error()
			if lines := strings.Split(msg, "\n"); len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(lines), len(tt.want), msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, "a.yaml"+w) {
					t.Errorf("want %q in\n%s", "a.yaml"+w, msg)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.MkdirAll(filepath.Join(home, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "secrets", "team"), []byte("  blue-team\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_MCP_TOKEN", "ghp-secret-1")
	t.Setenv("EVERYTHING_TOKEN", "everything-secret")
	f, err := Parse("tooled.yaml", []byte(withTools))
	if err != nil {
		t.Fatal(err)
	}
	gh, local := f.Tools.MCPServers[1], f.Tools.MCPServers[2]
	h, err := gh.ResolveHeaders()
	if err != nil || !reflect.DeepEqual(h, map[string]string{"Authorization": "Bearer ghp-secret-1", "X-Team": "blue-team"}) {
		t.Fatalf("headers = %v, %v", h, err)
	}
	env, secrets, err := local.ResolveEnv()
	if err != nil || !reflect.DeepEqual(env, []string{"FOO=bar", "TOKEN=everything-secret"}) || !reflect.DeepEqual(secrets, []string{"everything-secret"}) {
		t.Fatalf("env = %v, secrets %v, %v", env, secrets, err)
	}
	if h, err := f.Tools.MCPServers[0].ResolveHeaders(); h != nil || err != nil {
		t.Fatalf("no headers: %v, %v", h, err)
	}

	checkErr := func(t *testing.T, err error, want string) {
		t.Helper()
		var fe *Error
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, infinity.ErrInvalid) || !errors.As(err, &fe) {
			t.Fatalf("error %v: want ErrUnavailable, ErrInvalid and an *Error", err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q, want %q", err, want)
		}
		for _, secret := range []string{"ghp-secret", "blue-team", "line\nbreak"} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error quotes a value: %v", err)
			}
		}
	}
	os.Unsetenv("GITHUB_MCP_TOKEN")
	_, err = gh.ResolveHeaders()
	checkErr(t, err, "tooled.yaml:22:9: tools.mcp[1].headers.Authorization: environment variable GITHUB_MCP_TOKEN is not set")
	t.Setenv("GITHUB_MCP_TOKEN", "  ")
	_, err = gh.ResolveHeaders()
	checkErr(t, err, "tools.mcp[1].headers.Authorization: environment variable GITHUB_MCP_TOKEN is empty")
	t.Setenv("GITHUB_MCP_TOKEN", "line\nbreak")
	_, err = gh.ResolveHeaders()
	checkErr(t, err, "tools.mcp[1].headers.Authorization: the value taken from environment variable GITHUB_MCP_TOKEN is not a valid header value")
	t.Setenv("GITHUB_MCP_TOKEN", "ghp-secret-1")

	os.Remove(filepath.Join(home, "secrets", "team"))
	_, err = gh.ResolveHeaders()
	checkErr(t, err, "tooled.yaml:23:9: tools.mcp[1].headers.X-Team: file "+filepath.Join(home, "secrets", "team")+" cannot be read: no such file or directory")
	if err := os.WriteFile(filepath.Join(home, "secrets", "team"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = gh.ResolveHeaders()
	checkErr(t, err, "file "+filepath.Join(home, "secrets", "team")+" is empty")

	os.Unsetenv("EVERYTHING_TOKEN")
	_, _, err = local.ResolveEnv()
	checkErr(t, err, "tools.mcp[2].env.TOKEN: environment variable EVERYTHING_TOKEN is not set")

	rapLocal := f.Tools.RAPServers[3]
	t.Setenv("RAP_TOKEN", "rap-secret")
	env, secrets, err = rapLocal.ResolveEnv()
	if err != nil || !reflect.DeepEqual(env, []string{"FOO=bar", "TOKEN=rap-secret"}) || !reflect.DeepEqual(secrets, []string{"rap-secret"}) {
		t.Fatalf("rap env = %v, secrets %v, %v", env, secrets, err)
	}
	if p, err := rapLocal.CommandPath(); err != nil || p != filepath.Join(home, "bin", "rap-server") {
		t.Fatalf("rap command path = %q, %v", p, err)
	}
	os.Unsetenv("RAP_TOKEN")
	_, _, err = rapLocal.ResolveEnv()
	checkErr(t, err, "tooled.yaml:13:23: tools.rap[3].env.TOKEN: environment variable RAP_TOKEN is not set")
}

func TestSchemaTools(t *testing.T) {
	s := schemaMap(t)
	defs := s["$defs"].(map[string]any)
	props := func(name string) map[string]any {
		return defs[name].(map[string]any)["properties"].(map[string]any)
	}
	for path, def := range map[string]string{
		"tools.rap[]": "rap_server", "tools.rap[].timeout": "rap_timeout", "tools.rap[].env.*": "value", "tools.mcp[]": "mcp_server",
		"tools.mcp[].timeout": "timeout", "tools.mcp[].headers.*": "value", "tools.mcp[].env.*": "value",
	} {
		p := props(def)
		for name := range fields[path] {
			if _, ok := p[name]; !ok {
				t.Errorf("schema $defs.%s lacks %s", def, name)
			}
		}
		if len(p) != len(fields[path]) {
			t.Errorf("schema $defs.%s has %d fields, the parser %d for %s", def, len(p), len(fields[path]), path)
		}
	}
}

func schemaMap(t *testing.T) map[string]any {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}
