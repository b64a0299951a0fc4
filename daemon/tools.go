package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/tools/mcp"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// rapKeyFile holds the key of the RAP callback tokens (0600): callback URLs
// handed to tool servers stay valid across restarts, and a new key (delete
// the file) revokes them all.
const rapKeyFile = "rap.key"

// loadRAPKey reads the key, making one on first use.
func loadRAPKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(key) < 16 {
			return nil, fmt.Errorf("daemon: %s is not a hex key of 16 bytes or more; delete it to make a new one (callback URLs given out so far stop working): %w", path, infinity.ErrInvalid)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := writeFileSync(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return key, nil
}

// toolEnv is what agents' tools are built with.
type toolEnv struct {
	callbackBase string
	tokens       rap.Tokens
	client       infinity.HTTPClient
	// log receives the standard error of local MCP and RAP servers, with
	// their starts and stops; nil means slog.Default().
	log *slog.Logger
	// oauth authorizes the MCP servers with an oauth block (mcpoauth.go).
	oauth *mcpAuth
}

// agentTools are the tool servers of one agent.
type agentTools struct {
	// rap discovers the RAP toolsets per session, starting the local RAP
	// servers when first needed.
	rap      *rap.Loader
	notifier *rap.Notifier
	mcp      []*mcp.Server
	// local are the local MCP servers, started when a slice first needs
	// their tools, and the remote ones with an oauth block, connected then.
	local *mcp.Source
}

// valueHint says where the daemon takes the values of MCP servers'
// headers and local servers' variables from.
func valueHint() string {
	return fmt.Sprintf("The daemon (pid %d) takes these values when it loads the agent, from its own environment (which includes the variables of its home's env file, read when it starts) or from the file named: set the variable or fix the file (restart the daemon if you changed its environment), then run the agent again",
		os.Getpid())
}

// buildTools connects the agent file's remote MCP servers (their tools are
// the agent's own), prepares its local MCP servers (started when a slice
// first needs their tools) and its RAP toolsets (discovered per session;
// local RAP servers are started when first needed). Headers and local
// servers' variables are taken from the environment and files now; a
// missing one is an error that names the agent file, the entry and the
// variable or file.
func (te toolEnv) buildTools(ctx context.Context, f *agentfile.File, a *actors.Agent) (*agentTools, error) {
	log := te.log
	if log == nil {
		log = slog.Default()
	}
	at := &agentTools{}
	var local []mcp.Endpoint
	var authorized []*mcpAuthServer // the servers with an oauth block
	for _, s := range f.Tools.MCPServers {
		opts := []mcp.Option{mcp.WithTimeout(s.Timeout.CallDuration()), mcp.WithConnectTimeout(s.Timeout.ConnectDuration())}
		if s.Name != "" {
			opts = append(opts, mcp.WithName(s.Name))
		}
		if s.Local() {
			e, err := localServer(s, opts, log)
			if err != nil {
				at.close()
				return nil, err
			}
			local = append(local, e)
			continue
		}
		if s.OAuth != nil {
			e, srv, err := te.oauthServer(s, f, opts)
			if err != nil {
				at.close()
				return nil, err
			}
			local = append(local, e)
			authorized = append(authorized, srv)
			continue
		}
		headers, err := s.ResolveHeaders()
		if err != nil {
			at.close()
			return nil, fmt.Errorf("%w. %s", err, valueHint())
		}
		srv, err := mcp.Connect(ctx, s.URL, append(opts, mcp.WithHTTPClient(te.client), mcp.WithHeaders(headers))...)
		if err != nil {
			at.close()
			return nil, apiErr(http.StatusBadGateway, CodeToolUnreachable, "%s: %s: %v", f.Path(), s.Field(), err)
		}
		at.mcp = append(at.mcp, srv)
	}
	if len(at.mcp) > 0 {
		tools, err := mcp.Collect(at.mcp...)
		if err != nil {
			at.close()
			return nil, fmt.Errorf("%s: tools.mcp: %w", f.Path(), err)
		}
		a.Tools = append(a.Tools, tools...)
	}
	var sources []actors.ToolSource
	if len(f.Tools.RAPServers) > 0 {
		entries := make([]rap.Server, 0, len(f.Tools.RAPServers))
		for _, s := range f.Tools.RAPServers {
			e, err := rapServer(s)
			if err != nil {
				at.close()
				return nil, err
			}
			entries = append(entries, e)
		}
		at.rap = rap.NewLoader(rap.Config{
			Entries: entries, Client: te.client, CallbackBase: te.callbackBase, Tokens: te.tokens,
			Reserved: actors.ReservedToolNames(), Log: log,
		})
		at.notifier = &rap.Notifier{Loader: at.rap, Client: te.client}
		sources = append(sources, at.rap)
	}
	if len(local) > 0 {
		at.local = mcp.NewEndpointSource(local).Beside(at.mcp...)
		var src actors.ToolSource = at.local
		if len(authorized) > 0 {
			src = te.oauth.gate(a, src, authorized)
		}
		sources = append(sources, src)
	}
	a.Toolsets = actors.ToolSources(sources...)
	return at, nil
}

// localServer checks that a local MCP server's program can be found and
// takes its variables, without starting it.
func localServer(s agentfile.MCPServer, opts []mcp.Option, log *slog.Logger) (mcp.Endpoint, error) {
	path, err := s.CommandPath()
	if err != nil {
		return mcp.Endpoint{}, err
	}
	found, err := lookCommand(path, s.Command, s.CommandError)
	if err != nil {
		return mcp.Endpoint{}, err
	}
	env, secrets, err := s.ResolveEnv()
	if err != nil {
		return mcp.Endpoint{}, fmt.Errorf("%w. %s", err, valueHint())
	}
	opts = append(opts, mcp.WithName(s.Label()), mcp.WithLogger(log), mcp.WithIdle(s.IdleDuration()))
	return mcp.Endpoint{Command: &mcp.Command{Path: found, Args: s.Args, Env: env, Redact: secrets}, Options: opts}, nil
}

// lookCommand finds a local server's program (path, written command in
// the agent file); its error is the entry's (fail).
func lookCommand(path, command string, fail func(format string, args ...any) error) (string, error) {
	found, err := exec.LookPath(path)
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return "", fail("%s is not found in the daemon's PATH (%s)", command, os.Getenv("PATH"))
	case err != nil:
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return "", fail("%s cannot be started: %v", command, err)
	}
	return found, nil
}

// rapServer turns a tools.rap entry into the loader's: a remote server
// with its timeouts, or a local one whose program was found and whose
// variables were taken (it starts when first needed).
func rapServer(s agentfile.RAPServer) (rap.Server, error) {
	e := rap.Server{URL: s.URL, Name: s.Name, ConnectTimeout: s.Timeout.ConnectDuration(), CallTimeout: s.Timeout.CallDuration()}
	if !s.Local() {
		return e, nil
	}
	path, err := s.CommandPath()
	if err != nil {
		return rap.Server{}, err
	}
	found, err := lookCommand(path, s.Command, s.CommandError)
	if err != nil {
		return rap.Server{}, err
	}
	env, secrets, err := s.ResolveEnv()
	if err != nil {
		return rap.Server{}, fmt.Errorf("%w. %s", err, valueHint())
	}
	e.Name = s.Label()
	e.Command = &rap.Command{Path: found, Args: s.Args, Env: env, Redact: secrets, Port: s.Port, Idle: s.IdleDuration()}
	return e, nil
}

// close disconnects the agent's MCP servers and stops its local MCP and
// RAP servers, all at once.
func (at *agentTools) close() {
	if at == nil {
		return
	}
	var wg sync.WaitGroup
	for _, s := range at.mcp {
		wg.Go(func() { _ = s.Close() })
	}
	if at.local != nil {
		wg.Go(func() { _ = at.local.Close() })
	}
	if at.rap != nil {
		wg.Go(func() { _ = at.rap.Close() })
	}
	wg.Wait()
}

// notifier routes the engine's notifications to the RAP servers of the
// thread's agent.
type notifier struct{ d *Daemon }

func (n notifier) servers(ctx context.Context, id infinity.ThreadID) *rap.Notifier {
	info, err := n.d.store.Conversations().Thread(ctx, id)
	if err != nil {
		return nil
	}
	return n.d.agents.notifier(info.Agent)
}

func (n notifier) ThreadClosed(ctx context.Context, id infinity.ThreadID) {
	if rn := n.servers(ctx, id); rn != nil {
		rn.ThreadClosed(ctx, id)
	}
}

func (n notifier) CallCancelled(ctx context.Context, id infinity.ThreadID, call string) {
	if rn := n.servers(ctx, id); rn != nil {
		rn.CallCancelled(ctx, id, call)
	}
}

// views keeps the newest view_update per (thread, view type), in memory:
// a client that connects gets them all (RAP §5.5).
type views struct {
	d  *Daemon
	mu sync.Mutex
	m  map[infinity.ThreadID]map[string]json.RawMessage
}

// View stores a view of a known thread and wakes its followers.
func (v *views) View(ctx context.Context, id infinity.ThreadID, viewType string, content json.RawMessage) error {
	if _, err := v.d.store.Conversations().Thread(ctx, id); err != nil {
		return fmt.Errorf("view for %s: %w", id, err)
	}
	v.mu.Lock()
	if v.m == nil {
		v.m = map[infinity.ThreadID]map[string]json.RawMessage{}
	}
	if v.m[id] == nil {
		v.m[id] = map[string]json.RawMessage{}
	}
	v.m[id][viewType] = append(json.RawMessage(nil), content...)
	v.mu.Unlock()
	v.d.hub.poke(id)
	return nil
}

// of returns a thread's views.
func (v *views) of(id infinity.ThreadID) map[string]json.RawMessage {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]json.RawMessage, len(v.m[id]))
	for k, c := range v.m[id] {
		out[k] = c
	}
	return out
}

// oauthSender keeps OAuth URLs out of the durable inbox (RAP: never store
// auth_url): the URL stays in the daemon's memory, shown while the call
// waits, and the message goes on without it.
type oauthSender struct {
	d    *Daemon
	next infinity.InputSender
}

func (s oauthSender) Send(ctx context.Context, msg infinity.InputMessage, at time.Time) error {
	if msg.Content.Type == infinity.ContentOAuth && msg.Content.AuthURL != "" {
		s.d.failMu.Lock()
		s.d.oauthURLs[oauthKey(msg.GroupID, msg.Content.ID)] = msg.Content.AuthURL
		s.d.failMu.Unlock()
		msg.Content.AuthURL = ""
	}
	return s.next.Send(ctx, msg, at)
}

func oauthKey(id infinity.ThreadID, call string) string { return string(id) + "\x00" + call }
