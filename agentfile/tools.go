package agentfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/infinity-runtime/infinity/internal/yamlnode"
)

// Tools lists the agent's tool servers. Each entry of tools.rap and
// tools.mcp is a URL or a mapping; RAPServers and MCPServers hold them as
// written, RAP and MCP the URLs of the remote ones.
type Tools struct {
	// RAP are the base URLs of the remote RAP tool servers (entries with a
	// url), in file order; local servers (command) are in RAPServers only.
	RAP []string `yaml:"-"`
	// MCP are the URLs of the remote MCP servers (entries with a url), in
	// file order; local servers (command) are in MCPServers only.
	MCP []string `yaml:"-"`
	// RAPServers are the tools.rap entries.
	RAPServers []RAPServer `yaml:"rap"`
	// MCPServers are the tools.mcp entries.
	MCPServers []MCPServer `yaml:"mcp"`
}

// RAPServer is one entry of tools.rap: a remote tool server (url) or a
// local one (command, with args, env, port and idle) that the daemon
// starts and reaches over HTTP on the loopback interface.
type RAPServer struct {
	// URL is a remote server's base URL.
	URL string `yaml:"url"`
	// Name names the server in logs and errors (optional).
	Name string `yaml:"name"`
	// Timeout bounds fetching the manifest (connect; for a local server
	// also starting it) and each try of an invocation (call).
	Timeout Timeout `yaml:"timeout"`
	// Command is a local server's program: a name looked up in PATH, an
	// absolute path, or one starting with ~/.
	Command string `yaml:"command"`
	// Args are its arguments; with Port set, "{port}" in them stands for
	// the port (PortArg).
	Args []string `yaml:"args"`
	// Env are variables it gets besides the few it inherits.
	Env map[string]Value `yaml:"env"`
	// Port, when set, is the port the local server must listen on: it gets
	// it as PortEnv and in place of PortArg in Args. Zero: the server picks
	// one and announces it, printing {"port":N} on its standard output.
	Port int `yaml:"port"`
	// Idle is how long a local server may go unused before it is stopped
	// (a Go duration; IdleDuration parses it); empty: never.
	Idle string `yaml:"idle"`

	at, commandAt origin
}

// What a local RAP server with a port gets (the same as tools/rap's
// PortEnv and PortArg).
const (
	// PortEnv is the variable that holds the port.
	PortEnv = "INFINITY_PORT"
	// PortArg, in an argument, is replaced by the port.
	PortArg = "{port}"
)

// MCPServer is one entry of tools.mcp: a remote server (url, with
// optional headers) or a local one (command, with args and env) that the
// daemon starts and speaks to over its standard input and output.
type MCPServer struct {
	// URL is a remote server's address (streamable HTTP).
	URL string `yaml:"url"`
	// Name names the server in logs and errors (optional).
	Name string `yaml:"name"`
	// Headers are sent with every request to a remote server, their
	// values taken from the environment or a file when it connects.
	Headers map[string]Value `yaml:"headers"`
	// Timeout bounds connecting and each call.
	Timeout Timeout `yaml:"timeout"`
	// Command is a local server's program: a name looked up in PATH, an
	// absolute path, or one starting with ~/.
	Command string `yaml:"command"`
	// Args are its arguments.
	Args []string `yaml:"args"`
	// Env are variables it gets besides the few it inherits.
	Env map[string]Value `yaml:"env"`
	// Idle is how long a local server may go unused before it is stopped
	// (a Go duration; IdleDuration parses it).
	Idle string `yaml:"idle"`
	// OAuth, when set (oauth: {} for the defaults), has the daemon get a
	// remote server's tokens through MCP's authorization flow (OAuth 2.1
	// with PKCE): the user opens an authorization URL once, and the
	// tokens are kept in the daemon's home and refreshed.
	OAuth *OAuth `yaml:"oauth"`

	at, commandAt, oauthAt origin
}

// OAuth is a remote MCP server's oauth block.
type OAuth struct {
	// ClientID is a client registered beforehand with the server's
	// authorization server; empty: the daemon registers itself (dynamic
	// client registration, RFC 7591).
	ClientID string `yaml:"client_id"`
	// ClientSecret is that client's secret (a confidential client), taken
	// from the environment or a file when the agent loads.
	ClientSecret *Value `yaml:"client_secret"`
	// Scopes are the scopes to ask for; empty: those the server names.
	Scopes []string `yaml:"scopes"`
}

// Timeout is an entry's timeout: Go durations ("10s", "2m"); empty means
// the program's default.
type Timeout struct {
	// Connect bounds connecting (for a local server: starting it).
	Connect string `yaml:"connect"`
	// Call bounds one tool call.
	Call string `yaml:"call"`
}

// Value is the value of a header or of a local server's variable: taken,
// when the server is connected, from the environment (Env) or a file
// (File, its content without surrounding white space), after Prefix; or,
// for a variable only, written in the file (Literal). Values taken from
// the environment or a file are never stored with the agent, logged or
// quoted in errors.
type Value struct {
	// Env is the variable of the connecting program's environment (the
	// daemon's) that holds the value.
	Env string `yaml:"env"`
	// File is the file that holds it: an absolute path, or one starting
	// with ~/ (the connecting program's user's home).
	File string `yaml:"file"`
	// Prefix goes before it ("Bearer ").
	Prefix string `yaml:"prefix"`
	// Literal is a variable's value written as a plain string.
	Literal string `yaml:"-"`

	plain bool // written as a plain string
	at    origin
}

// ErrUnavailable is wrapped (beside infinity.ErrInvalid) by the errors of
// Value.Resolve and MCPServer.ResolveHeaders and ResolveEnv: a variable is
// not set or empty, or a file cannot be read or is empty.
var ErrUnavailable = errors.New("value unavailable")

// Ranges of the durations.
const (
	minConnect, maxConnect = time.Second, 10 * time.Minute
	minCall, maxCall       = time.Second, time.Hour
	minIdle, maxIdle       = 10 * time.Second, 24 * time.Hour
	// maxValueFile bounds a file a value is read from.
	maxValueFile = 64 << 10
)

// reservedHeaders are set by the MCP transport itself.
var reservedHeaders = []string{"Accept", "Connection", "Content-Length", "Content-Type", "Host",
	"Last-Event-Id", "Mcp-Protocol-Version", "Mcp-Session-Id", "Transfer-Encoding"}

var (
	serverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+^_`|~-]+$")
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// origin is where a value is written, for errors found after parsing.
type origin struct {
	path, field string
	line, col   int
}

func (o origin) errorf(format string, args ...any) *Error {
	return &Error{Path: o.path, Line: o.line, Col: o.col, Field: o.field, Msg: fmt.Sprintf(format, args...)}
}

// valueError is an *Error that also wraps ErrUnavailable.
type valueError struct{ err *Error }

func (e valueError) Error() string        { return e.err.Error() }
func (e valueError) Unwrap() error        { return e.err }
func (e valueError) Is(target error) bool { return target == ErrUnavailable }

// UnmarshalYAML takes a plain URL or a mapping.
func (s *RAPServer) UnmarshalYAML(n ast.Node) error {
	if str, ok := scalar(n); ok {
		*s = RAPServer{URL: str}
		return nil
	}
	type plain RAPServer
	return yaml.NodeToValue(n, (*plain)(s), yaml.Strict())
}

// UnmarshalYAML takes a plain URL or a mapping.
func (s *MCPServer) UnmarshalYAML(n ast.Node) error {
	if str, ok := scalar(n); ok {
		*s = MCPServer{URL: str}
		return nil
	}
	type plain MCPServer
	return yaml.NodeToValue(n, (*plain)(s), yaml.Strict())
}

// UnmarshalYAML takes a plain string (Literal) or a mapping.
func (v *Value) UnmarshalYAML(n ast.Node) error {
	if str, ok := scalar(n); ok {
		*v = Value{Literal: str, plain: true}
		return nil
	}
	type plain Value
	return yaml.NodeToValue(n, (*plain)(v), yaml.Strict())
}

// scalar returns a string node's text.
func scalar(n ast.Node) (string, bool) {
	switch v := yamlnode.Unwrap(n).(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value != nil {
			return v.Value.Value, true
		}
		return "", true
	}
	return "", false
}

// ConnectDuration returns Connect parsed, or 0 when it is empty (Parse
// has rejected invalid values).
func (t Timeout) ConnectDuration() time.Duration { return duration(t.Connect) }

// CallDuration returns Call parsed, or 0 when it is empty.
func (t Timeout) CallDuration() time.Duration { return duration(t.Call) }

// IdleDuration returns Idle parsed, or 0 when it is empty.
func (s MCPServer) IdleDuration() time.Duration { return duration(s.Idle) }

func duration(s string) time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return d
}

// Local reports whether the entry is a local server (command).
func (s MCPServer) Local() bool { return s.Command != "" }

// Local reports whether the entry is a local server (command).
func (s RAPServer) Local() bool { return s.Command != "" }

// IdleDuration returns Idle parsed, or 0 when it is empty (never stop).
func (s RAPServer) IdleDuration() time.Duration { return duration(s.Idle) }

// Label names the server: its name, else its program's base name or its
// URL.
func (s RAPServer) Label() string { return serverLabel(s.Name, s.Command, s.URL) }

// Field returns the entry's field path ("tools.rap[2]").
func (s RAPServer) Field() string { return s.at.field }

// CommandPath returns Command with a leading ~/ made the home directory of
// this program's user.
func (s RAPServer) CommandPath() (string, error) { return commandPath(s.Command, s.commandAt) }

// CommandError reports a problem with the entry's command, as an *Error
// at its place in the agent file (wrapping infinity.ErrInvalid).
func (s RAPServer) CommandError(format string, args ...any) error {
	return s.commandAt.errorf(format, args...)
}

// ResolveEnv returns a local server's variables as NAME=value, sorted by
// name, taken from the environment and files now, and the values so taken
// without their prefixes (credentials, for redaction); as
// MCPServer.ResolveEnv.
func (s RAPServer) ResolveEnv() (env, secrets []string, err error) { return resolveEnv(s.Env) }

// Label names the server as RAPServer.Label does.
func (s MCPServer) Label() string { return serverLabel(s.Name, s.Command, s.URL) }

// serverLabel is a tool server's name, else its program's base name, else
// its URL.
func serverLabel(name, command, url string) string {
	switch {
	case name != "":
		return name
	case command != "":
		return filepath.Base(command)
	}
	return url
}

// Field returns the entry's field path ("tools.mcp[2]").
func (s MCPServer) Field() string { return s.at.field }

// CommandPath returns Command with a leading ~/ made the home directory of
// this program's user.
func (s MCPServer) CommandPath() (string, error) { return commandPath(s.Command, s.commandAt) }

func commandPath(command string, at origin) (string, error) {
	p, err := expandHome(command)
	if err != nil {
		return "", valueError{at.errorf("%v", err)}
	}
	return p, nil
}

// CommandError reports a problem with the entry's command, as an *Error
// at its place in the agent file (wrapping infinity.ErrInvalid).
func (s MCPServer) CommandError(format string, args ...any) error {
	return s.commandAt.errorf(format, args...)
}

// ResolveHeaders returns the headers' values, taken from the environment
// and files now. Its errors (every header's, joined) name the agent file,
// the header and the variable or file, never a value; each is an *Error
// that also wraps ErrUnavailable.
func (s MCPServer) ResolveHeaders() (map[string]string, error) {
	if len(s.Headers) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(s.Headers))
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		v := s.Headers[name]
		val, err := v.resolveSendable("header value")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ResolveEnv returns a local server's variables as NAME=value, sorted by
// name, taken from the environment and files now, and the values so taken
// without their prefixes (credentials, for redaction). Its errors are as
// ResolveHeaders's.
func (s MCPServer) ResolveEnv() (env, secrets []string, err error) { return resolveEnv(s.Env) }

func resolveEnv(vars map[string]Value) (env, secrets []string, err error) {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		v := vars[name]
		val, err := v.Resolve()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if strings.ContainsRune(val, 0) {
			errs = append(errs, valueError{v.at.errorf("the value taken from %s holds a NUL byte", v.source())})
			continue
		}
		env = append(env, name+"="+val)
		if !v.plain {
			secrets = append(secrets, strings.TrimPrefix(val, v.Prefix))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return env, secrets, nil
}

// source says where a value comes from, for errors.
func (v Value) source() string {
	if v.Env != "" {
		return "environment variable " + v.Env
	}
	return "file " + v.File
}

// Resolve returns the value: Prefix and the variable's value, or the
// file's content without surrounding white space; or Literal. Its error
// names the agent file, the field and the variable or file, never a
// value, and wraps ErrUnavailable and infinity.ErrInvalid.
func (v Value) Resolve() (string, error) {
	switch {
	case v.Env != "":
		s, ok := os.LookupEnv(v.Env)
		switch {
		case !ok:
			return "", valueError{v.at.errorf("environment variable %s is not set", v.Env)}
		case strings.TrimSpace(s) == "":
			return "", valueError{v.at.errorf("environment variable %s is empty", v.Env)}
		}
		return v.Prefix + s, nil
	case v.File != "":
		path, err := expandHome(v.File)
		if err != nil {
			return "", valueError{v.at.errorf("file %s: %v", v.File, err)}
		}
		b, err := readSmall(path)
		if err != nil {
			return "", valueError{v.at.errorf("file %s cannot be read: %v", path, err)}
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", valueError{v.at.errorf("file %s is empty", path)}
		}
		return v.Prefix + s, nil
	}
	return v.Literal, nil
}

// readSmall reads a regular file of at most maxValueFile bytes (not a
// FIFO or a device, which could block or never end).
func readSmall(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("it is not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxValueFile+1))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	if len(b) > maxValueFile {
		return nil, fmt.Errorf("it is larger than %d bytes", maxValueFile)
	}
	return b, nil
}

// expandHome makes a leading ~/ the home directory of this program's user.
func expandHome(p string) (string, error) {
	rest, ok := strings.CutPrefix(p, "~/")
	if !ok {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for ~/: %w", err)
	}
	return filepath.Join(home, rest), nil
}

// RefuseDaemonOnly returns an error (an *Error per entry, joined) for
// every tools.rap and tools.mcp entry that only the daemon can serve, for
// programs that cannot start processes or show a user an authorization
// URL (the cloud functions): local servers (command), and MCP servers
// that need the user's authorization (oauth); nil when there is none.
func (f *File) RefuseDaemonOnly() error {
	var errs []error
	for _, s := range f.Tools.RAPServers {
		if s.Local() {
			errs = append(errs, s.commandAt.errorf("local RAP servers (command) run only in the daemon: this program cannot start processes; use a remote server (url)"))
		}
	}
	for _, s := range f.Tools.MCPServers {
		if s.Local() {
			errs = append(errs, s.commandAt.errorf("local MCP servers (command) run only in the daemon: this program cannot start processes; use a remote server (url)"))
		}
		if s.OAuth != nil {
			errs = append(errs, s.oauthAt.errorf("MCP servers that need the user's authorization (oauth) run only in the daemon: this program cannot show an authorization URL or receive its redirect; give the server a credential in headers (from a secret) instead"))
		}
	}
	return errors.Join(errs...)
}

// origin returns where field is written.
func (p *parse) origin(field string) origin {
	o := origin{path: p.path, field: field, line: 1, col: 1}
	if tk := p.token(field); tk != nil && tk.Position != nil {
		o.line, o.col = tk.Position.Line, tk.Position.Column
	}
	return o
}

// mapping reports whether field is written as a mapping.
func (p *parse) mapping(field string) bool {
	e, ok := p.index[field]
	if !ok {
		return false
	}
	switch e.value.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return true
	}
	return false
}

// tools checks the tools section and fills in RAP, MCP and where each
// entry is written.
func (p *parse) tools(f *File) {
	t := &f.Tools
	t.RAP, t.MCP = nil, nil
	p.rapServers(t)
	names := map[string]string{}
	urls := map[string]string{}
	for i := range t.MCPServers {
		s := &t.MCPServers[i]
		at := fmt.Sprintf("tools.mcp[%d]", i)
		s.at, s.commandAt = p.origin(at), p.origin(at+".command")
		if !p.mapping(at) {
			p.url(at, s.URL)
			p.once(urls, s.URL, at, "the server %s is listed twice (also %s)")
			t.MCP = append(t.MCP, s.URL)
			continue
		}
		switch {
		case s.URL != "" && s.Command != "":
			p.at(at+".command", "set either url (a remote server) or command (a local one), not both")
		case s.URL == "" && s.Command == "":
			p.at(at, "required: url (a remote server) or command (a local one)")
		case s.URL != "":
			p.url(at+".url", s.URL)
			p.once(urls, s.URL, at+".url", "the server %s is listed twice (also %s)")
			t.MCP = append(t.MCP, s.URL)
		default:
			p.command(at+".command", s.Command)
		}
		if s.Command == "" {
			for _, k := range []string{"args", "env", "idle"} {
				if p.present(at + "." + k) {
					p.at(at+"."+k, "only a local server (command) takes %s", k)
				}
			}
		} else if p.present(at + ".headers") {
			p.at(at+".headers", "only a remote server (url) takes headers; give a local server its credentials in env")
		}
		p.oauth(at, s)
		if p.present(at + ".name") {
			switch {
			case !serverNameRE.MatchString(s.Name):
				p.at(at+".name", "%q is not a valid name: use 1-64 letters, digits, -, _ and ., starting with a letter or digit", s.Name)
			default:
				p.once(names, s.Name, at+".name", "the name %s is taken (also %s)")
			}
		}
		p.headers(at+".headers", s.Headers)
		for _, name := range slices.Sorted(maps.Keys(s.Env)) {
			v := s.Env[name]
			field := at + ".env." + name
			p.value(field, &v, true)
			s.Env[name] = v
		}
		for j, a := range s.Args {
			if strings.ContainsRune(a, 0) {
				p.at(fmt.Sprintf("%s.args[%d]", at, j), "an argument may not hold a NUL byte")
			}
		}
		p.timeout(at+".timeout", s.Timeout)
		p.duration(at+".idle", s.Idle, minIdle, maxIdle)
	}
}

// oauth checks an MCP entry's oauth block.
func (p *parse) oauth(at string, s *MCPServer) {
	field := at + ".oauth"
	s.oauthAt = p.origin(field)
	if !p.present(field) {
		s.OAuth = nil
		return
	}
	if s.OAuth == nil {
		s.OAuth = &OAuth{} // oauth: {}
	}
	o := s.OAuth
	if s.Command != "" {
		p.at(field, "only a remote server (url) takes oauth; give a local server its credentials in env")
	}
	for name := range s.Headers {
		if strings.EqualFold(name, "Authorization") {
			p.at(at+".headers."+name, "the authorization flow (oauth) sets Authorization; remove this header or the oauth block")
		}
	}
	if p.present(field+".client_id") && (strings.TrimSpace(o.ClientID) == "" || strings.ContainsFunc(o.ClientID, isControl)) {
		p.at(field+".client_id", "want a client id: not empty, without control characters")
	}
	if o.ClientSecret != nil {
		sf := field + ".client_secret"
		switch {
		case o.ClientSecret.plain:
			p.at(sf, "a client secret comes from the environment or a file, never from the agent file: write {env: NAME} or {file: PATH}")
		case o.ClientID == "":
			p.at(sf, "a client secret goes with a client_id (a client registered beforehand)")
		default:
			p.value(sf, o.ClientSecret, false)
		}
	}
	for i, sc := range o.Scopes {
		// RFC 6749 §3.3's scope-token, as the schema's pattern.
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r > '~' }) {
			p.at(fmt.Sprintf("%s.scopes[%d]", field, i), "%q is not a scope: use printable ASCII characters other than space, \" and \\", sc)
		}
	}
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// ResolveOAuth returns the oauth block's client secret, taken from the
// environment or a file now ("" without one). Its error is as
// ResolveHeaders's.
func (s MCPServer) ResolveOAuth() (string, error) {
	if s.OAuth == nil || s.OAuth.ClientSecret == nil {
		return "", nil
	}
	return s.OAuth.ClientSecret.resolveSendable("client secret")
}

// resolveSendable is Resolve for a value sent in a request (what: a
// "header value", a "client secret"): a line break or another control
// character (a tab aside) is refused, naming where the value came from.
func (v Value) resolveSendable(what string) (string, error) {
	val, err := v.Resolve()
	if err != nil {
		return "", err
	}
	if strings.ContainsFunc(val, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return "", valueError{v.at.errorf("the value taken from %s is not a valid %s: it holds a line break or another control character", v.source(), what)}
	}
	return val, nil
}

// rapServers checks the tools.rap entries.
func (p *parse) rapServers(t *Tools) {
	names := map[string]string{} // local servers' labels and every name
	for i := range t.RAPServers {
		s := &t.RAPServers[i]
		at := fmt.Sprintf("tools.rap[%d]", i)
		s.at, s.commandAt = p.origin(at), p.origin(at+".command")
		if !p.mapping(at) {
			p.url(at, s.URL)
			t.RAP = append(t.RAP, s.URL)
			continue
		}
		switch {
		case s.URL != "" && s.Command != "":
			p.at(at+".command", "set either url (a remote server) or command (a local one the daemon starts), not both")
		case s.URL == "" && s.Command == "":
			p.at(at, "required: url (a remote server's base URL) or command (a local one the daemon starts)")
		case s.URL != "":
			p.url(at+".url", s.URL)
			t.RAP = append(t.RAP, s.URL)
		default:
			p.command(at+".command", s.Command)
		}
		if s.Command == "" {
			for _, k := range []string{"args", "env", "port", "idle"} {
				if p.present(at + "." + k) {
					p.at(at+"."+k, "only a local server (command) takes %s", k)
				}
			}
		}
		switch {
		case p.present(at + ".name"):
			if !serverNameRE.MatchString(s.Name) {
				p.at(at+".name", "%q is not a valid name: use 1-64 letters, digits, -, _ and ., starting with a letter or digit", s.Name)
			} else {
				p.once(names, s.Name, at+".name", "the name %s is taken (also %s)")
			}
		case s.Command != "" && s.URL == "":
			label := s.Label()
			if where, dup := names[label]; dup {
				p.at(at+".command", "this local server would be called %s, like %s: give one of them a name", label, where)
			} else {
				names[label] = at
			}
		}
		for _, name := range slices.Sorted(maps.Keys(s.Env)) {
			v := s.Env[name]
			field := at + ".env." + name
			p.value(field, &v, true)
			s.Env[name] = v
			if name == PortEnv && p.present(at+".port") {
				p.at(field, "%s is set by the daemon to the port (port)", PortEnv)
			}
		}
		for j, a := range s.Args {
			switch {
			case strings.ContainsRune(a, 0):
				p.at(fmt.Sprintf("%s.args[%d]", at, j), "an argument may not hold a NUL byte")
			case strings.Contains(a, PortArg) && !p.present(at+".port") && s.Command != "":
				p.at(fmt.Sprintf("%s.args[%d]", at, j), "%s stands for port, which is not set: set port, or leave %s out and let the server choose its port and announce it ({\"port\":N} on its standard output)", PortArg, PortArg)
			}
		}
		if p.present(at+".port") && (s.Port < 1 || s.Port > 65535) {
			p.at(at+".port", "%d is out of range: want 1 to 65535 (leave port out to let the server choose its port and announce it)", s.Port)
		}
		p.timeout(at+".timeout", s.Timeout)
		p.duration(at+".idle", s.Idle, minIdle, maxIdle)
	}
}

// once reports a value seen before under another field.
func (p *parse) once(seen map[string]string, v, field, format string) {
	if v == "" {
		return
	}
	if where, dup := seen[v]; dup {
		p.at(field, format, v, where)
		return
	}
	seen[v] = field
}

func (p *parse) headers(field string, hs map[string]Value) {
	canon := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(hs)) {
		v := hs[name]
		hf := field + "." + name
		c := textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case slices.Contains(reservedHeaders, c):
			p.at(hf, "%s is set by the MCP transport itself", name)
		case canon[c] != "":
			p.at(hf, "%s is also set as %s (header names are not case-sensitive)", name, canon[c])
		}
		canon[c] = name
		p.value(hf, &v, false)
		hs[name] = v
	}
}

// value checks a header's or variable's value and records where it is.
func (p *parse) value(field string, v *Value, literal bool) {
	v.at = p.origin(field)
	switch {
	case v.plain && literal:
		if strings.ContainsRune(v.Literal, 0) {
			p.at(field, "a value may not hold a NUL byte")
		}
		return
	case v.plain:
		p.at(field, "a header's value comes from the environment or a file, never from the agent file: write {env: NAME} or {file: PATH}")
		return
	case v.Env != "" && v.File != "":
		p.at(field+".file", "set either env or file, not both")
	case v.Env == "" && v.File == "":
		p.at(field, "set env (the variable that holds the value) or file (the file that does)")
	case v.Env != "" && !envNameRE.MatchString(v.Env):
		p.at(field+".env", "%q is not a variable name: use letters, digits and _, not starting with a digit", v.Env)
	case v.File != "" && !filepath.IsAbs(v.File) && !strings.HasPrefix(v.File, "~/"):
		p.at(field+".file", "%q: want an absolute path or one starting with ~/ (the program that connects reads it, not the agent file's directory)", v.File)
	}
	if strings.ContainsAny(v.Prefix, "\r\n\x00") {
		p.at(field+".prefix", "a prefix may not hold a line break or a NUL byte")
	}
}

func (p *parse) command(field, c string) {
	switch {
	case strings.TrimSpace(c) == "":
		p.at(field, "required: the program to start (a name looked up in PATH, or a path)")
	case strings.ContainsRune(c, 0):
		p.at(field, "a command may not hold a NUL byte")
	case strings.ContainsRune(c, '/') && !filepath.IsAbs(c) && !strings.HasPrefix(c, "~/"):
		p.at(field, "%q: want a name looked up in PATH, an absolute path or one starting with ~/", c)
	}
}

func (p *parse) timeout(field string, t Timeout) {
	p.duration(field+".connect", t.Connect, minConnect, maxConnect)
	p.duration(field+".call", t.Call, minCall, maxCall)
}

// duration checks a Go duration within [lo, hi], when present.
func (p *parse) duration(field, s string, lo, hi time.Duration) {
	if !p.present(field) {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		p.at(field, "%q is not a Go duration (such as 90s or 5m)", s)
	case d < lo || d > hi:
		p.at(field, "%s is out of range: want %s to %s", d, short(lo), short(hi))
	}
}

// short writes a duration without its zero units ("10m", not "10m0s").
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// freeKey checks a key of a mapping whose keys are names (headers, env).
func (p *parse) freeKey(parent, name string) (string, bool) {
	switch generic(parent) {
	case "tools.mcp[].headers":
		if !headerNameRE.MatchString(name) {
			return fmt.Sprintf("%q is not a header name", name), false
		}
	case "tools.mcp[].env", "tools.rap[].env":
		if !envNameRE.MatchString(name) {
			return fmt.Sprintf("%q is not a variable name: use letters, digits and _, not starting with a digit", name), false
		}
	}
	return "", true
}
