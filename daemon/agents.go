package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/internal/atomicfile"
	"github.com/infinity-runtime/infinity/models/network"
	"github.com/infinity-runtime/infinity/models/replay"
	"github.com/infinity-runtime/infinity/pricing"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// Agents are registered by content: the key is the agent's name and a
// hash of its files, so editing a file and running it again registers a new
// agent while threads started from the old one keep their configuration,
// across restarts. Each lives in agents/<key>/ under the daemon's home as
// agent.yaml and, for a scripted model with a script, script.json.
const (
	agentsDir  = "agents"
	agentYAML  = "agent.yaml"
	scriptJSON = "script.json"
)

// AgentInfo describes a registered agent.
type AgentInfo struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Provider    string `json:"provider"`
	Model       string `json:"model,omitempty"`
	// Models are the models its threads may run on ("provider/model"),
	// the default first (infinity run --model).
	Models []string `json:"models,omitempty"`
}

type registry struct {
	dir   string
	rt    *actors.Runtime
	log   *slog.Logger
	tools toolEnv
	// prices are the daemon's prices file's; agent files override them.
	prices *pricing.Table
	home   string
	// tee, when the daemon records (Options.Record), wraps every agent's
	// providers.
	tee *replay.Tee

	mu      sync.Mutex
	sources map[string]AgentSource
	infos   map[string]AgentInfo
	servers map[string]*agentTools // by agent key
	models  map[string]agentModels // by agent key
	// limits are each loaded agent's rate limits, and applied the
	// limits set on the runtime from them (see applyLimitsLocked).
	limits  map[string]agentLimits
	applied map[string]actors.ModelLimit
	// fixed are the daemon's own limits (Options.ModelLimits): they win.
	fixed map[string]actors.ModelLimit
}

// agentLimits are the models an agent file names and its rate limits.
type agentLimits struct {
	name   string    // the agent's name: its newest file counts
	at     time.Time // when the file was registered
	limits map[string]actors.ModelLimit
}

func newRegistry(home string, log *slog.Logger, tools toolEnv, prices *pricing.Table) *registry {
	return &registry{dir: filepath.Join(home, agentsDir), home: home, log: log, tools: tools, prices: prices,
		sources: map[string]AgentSource{}, infos: map[string]AgentInfo{}, servers: map[string]*agentTools{},
		models: map[string]agentModels{}, limits: map[string]agentLimits{}, applied: map[string]actors.ModelLimit{}}
}

// agentModels are the models and prices of an agent whose file built reg.
func (r *registry) agentModels(reg *agentfile.Registry) agentModels {
	return agentModels{Default: reg.Default.String(), Choices: reg.Models, Prices: pricing.Merge(r.prices, reg.Prices), Unavailable: reg.Unavailable}
}

// setModels records an agent's models (the bundled demo's, from Open).
func (r *registry) setModels(key string, reg *agentfile.Registry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.models[key] = r.agentModels(reg)
}

// modelsOf returns an agent's models and prices; an agent that did not
// load has no models, and the daemon's prices.
func (r *registry) modelsOf(key string) agentModels {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.models[key]; ok {
		return m
	}
	return agentModels{Prices: r.prices}
}

// notifier returns the RAP notifier of an agent's tool servers, or nil.
func (r *registry) notifier(key string) *rap.Notifier {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at := r.servers[key]; at != nil {
		return at.notifier
	}
	return nil
}

// close disconnects the agents' MCP servers.
func (r *registry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, at := range r.servers {
		at.close()
	}
}

func agentKey(name string, src AgentSource) string {
	h := sha256.New()
	h.Write([]byte(src.YAML))
	h.Write([]byte{0})
	h.Write([]byte(src.Script))
	return name + "-" + hex.EncodeToString(h.Sum(nil))[:10]
}

// parse validates an agent file as the user wrote it; origin names it in
// errors.
func parseSource(origin string, src AgentSource) (*agentfile.File, error) {
	f, err := agentfile.ParseDetached(origin, []byte(src.YAML))
	if err != nil {
		return nil, err
	}
	if f.Model.Provider == "scripted" && !f.Model.Demo && src.Script == "" {
		return nil, fmt.Errorf("%s: model.script: the script's content was not sent with the agent file: %w", origin, infinity.ErrInvalid)
	}
	return f, nil
}

// Register validates and stores an agent and adds it to the runtime; a
// known agent (same files) is not stored again. origin names the file in
// errors.
func (r *registry) Register(ctx context.Context, origin string, src AgentSource) (AgentInfo, error) {
	f, err := parseSource(origin, src)
	if err != nil {
		return AgentInfo{}, err
	}
	key := agentKey(f.Name, src)
	r.mu.Lock()
	defer r.mu.Unlock()
	if info, ok := r.infos[key]; ok {
		return info, nil
	}
	dir := filepath.Join(r.dir, key)
	if err := writeAgentDir(dir, src); err != nil {
		return AgentInfo{}, err
	}
	return r.loadLocked(ctx, key, src)
}

// writeAgentDir writes the files into a temporary directory, syncs them
// and renames the directory into place.
func writeAgentDir(dir string, src AgentSource) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("store agent: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-agent-")
	if err != nil {
		return fmt.Errorf("store agent: %w", err)
	}
	defer os.RemoveAll(tmp)
	files := map[string]string{agentYAML: src.YAML}
	if src.Script != "" {
		files[scriptJSON] = src.Script
	}
	for name, content := range files {
		if err := writeFileSync(filepath.Join(tmp, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("store agent: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		// A directory named by the same hash holds the same files already.
		if _, serr := os.Stat(filepath.Join(dir, agentYAML)); serr != nil {
			return fmt.Errorf("store agent: %w", err)
		}
	}
	return atomicfile.SyncDir(filepath.Dir(dir))
}

// loadLocked builds the agent from its stored files and adds it to the
// runtime. r.mu is held.
func (r *registry) loadLocked(ctx context.Context, key string, src AgentSource) (AgentInfo, error) {
	dir := filepath.Join(r.dir, key)
	f, err := agentfile.ParseDetached(filepath.Join(dir, agentYAML), []byte(src.YAML))
	if err != nil {
		return AgentInfo{}, err
	}
	if src.Script != "" {
		f.Model.Script = scriptJSON
	}
	reg, err := f.Registry(ctx, network.All())
	if err != nil {
		return AgentInfo{}, fmt.Errorf("%w. %s", err, envHint(r.home))
	}
	a := f.Agent(nil)
	reg.Configure(&a)
	if r.tee != nil {
		r.tee.WrapAgent(&a)
	}
	a.Name = key
	at, err := r.tools.buildTools(ctx, f, &a)
	if err != nil {
		return AgentInfo{}, err
	}
	if err := r.rt.AddAgent(a); err != nil && !errors.Is(err, infinity.ErrExists) {
		at.close()
		return AgentInfo{}, err
	}
	registered := time.Time{}
	if fi, err := os.Stat(dir); err == nil {
		registered = fi.ModTime()
	}
	r.limits[key] = agentLimits{name: f.Name, at: registered, limits: reg.Limits}
	if err := r.applyLimitsLocked(); err != nil {
		at.close()
		return AgentInfo{}, err
	}
	r.servers[key] = at
	info := AgentInfo{Key: key, Name: f.Name, Description: f.Description, Provider: f.Model.Provider, Model: f.Model.ID, Models: reg.Models}
	r.sources[key], r.infos[key] = src, info
	am := r.agentModels(reg)
	am.Budget = f.TreeBudget()
	r.models[key] = am
	return info, nil
}

// LoadAll loads every stored agent. An agent that no longer loads (a
// provider whose key is missing from the environment) is logged and
// skipped: its threads wait until it loads again.
func (r *registry) LoadAll(ctx context.Context) error {
	entries, err := os.ReadDir(r.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load agents: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		dir := filepath.Join(r.dir, e.Name())
		y, err := os.ReadFile(filepath.Join(dir, agentYAML))
		if err != nil {
			return fmt.Errorf("load agent %s: %w", e.Name(), err)
		}
		src := AgentSource{YAML: string(y)}
		if s, err := os.ReadFile(filepath.Join(dir, scriptJSON)); err == nil {
			src.Script = string(s)
		}
		if _, err := r.loadLocked(ctx, e.Name(), src); err != nil {
			// Its threads must not fall back to another agent: they run
			// on a provider that fails with the reason, so their status
			// says it, and a restart with the cause fixed resumes them.
			r.log.Error("agent not loaded; its threads fail until it loads", "agent", e.Name(), "err", err)
			if aerr := r.rt.AddAgent(actors.Agent{Name: e.Name(), Provider: unloaded{key: e.Name(), err: err}}); aerr != nil {
				return fmt.Errorf("load agent %s: %w", e.Name(), aerr)
			}
		}
	}
	return nil
}

// Find returns a registered agent by key, or by name when exactly one
// registered agent has that name.
func (r *registry) Find(keyOrName string) (AgentInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if info, ok := r.infos[keyOrName]; ok {
		return info, true
	}
	var found []AgentInfo
	for _, info := range r.infos {
		if info.Name == keyOrName {
			found = append(found, info)
		}
	}
	if len(found) != 1 {
		return AgentInfo{}, false
	}
	return found[0], true
}

// List returns the registered agents by key.
func (r *registry) List() []AgentInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]AgentInfo, 0, len(r.infos))
	for _, i := range r.infos {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b AgentInfo) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Sources returns the files of the agents named by keys (for an export).
func (r *registry) Sources(keys map[string]bool) map[string]AgentSource {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]AgentSource{}
	for k := range keys {
		if s, ok := r.sources[k]; ok {
			out[k] = s
		}
	}
	return out
}

// unloaded is the provider of an agent whose files did not load.
type unloaded struct {
	key string
	err error
}

func (u unloaded) Models(context.Context) ([]infinity.ModelInfo, error) { return nil, u.error() }

func (u unloaded) Stream(context.Context, infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		yield(infinity.StreamEvent{}, u.error())
	}
}

func (u unloaded) error() error {
	return fmt.Errorf("agent %s did not load when the daemon started (fix it and restart the daemon): %w", u.key, u.err)
}

// envHint says where the daemon's model providers find their keys: its
// own environment, not the CLI's.
func envHint(home string) string {
	return fmt.Sprintf("The daemon (pid %d) reads API keys and provider settings from its own environment when it starts, and from %s: add NAME=value there (or export it where the daemon starts), then restart it (infinity daemon stop, then infinity daemon start)",
		os.Getpid(), filepath.Join(home, EnvFile))
}

// applyLimitsLocked sets the runtime's rate limits from the loaded agent
// files: only each agent's newest file counts (an older version's limits
// are gone once a newer one is registered), and a model's limit is the
// one of the file registered last among those that set one. Limits are
// the daemon's, shared by every agent that runs on the model.
func (r *registry) applyLimitsLocked() error {
	newest := map[string]agentLimits{}
	for _, al := range r.limits {
		if have, ok := newest[al.name]; !ok || al.at.After(have.at) {
			newest[al.name] = al
		}
	}
	files := slices.Collect(maps.Values(newest))
	slices.SortFunc(files, func(a, b agentLimits) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	eff := map[string]actors.ModelLimit{}
	for _, al := range files {
		maps.Copy(eff, al.limits)
	}
	maps.Copy(eff, r.fixed)
	for m := range r.applied {
		if _, ok := eff[m]; !ok {
			eff[m] = actors.ModelLimit{}
		}
	}
	for m, lim := range eff {
		if r.applied[m] == lim {
			continue
		}
		if err := r.rt.SetModelLimit(m, lim); err != nil {
			return fmt.Errorf("agent rate limits: %w", err)
		}
		if lim == (actors.ModelLimit{}) {
			delete(r.applied, m)
		} else {
			r.applied[m] = lim
		}
	}
	return nil
}
