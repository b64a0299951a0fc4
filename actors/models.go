package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	infinity "github.com/infinity-runtime/infinity"
)

// threadModel is the model one thread runs on.
type threadModel struct {
	provider infinity.ModelProvider
	// id is the model id the provider is asked for ("" lets it pick).
	id string
	// name is what responses record as Item.Model: "provider/id", or the
	// bare id when the agent's provider has no name.
	name string
	// info is the provider's description of the model; zero when the
	// provider does not list it (no context window: no compaction).
	info infinity.ModelInfo
}

// errUnlisted: the agent's provider could not list its models.
var errUnlisted = errors.New("models not listed")

// modelCache remembers the models resolved for an agent, by reference.
type modelCache struct {
	mu sync.Mutex
	m  map[string]threadModel
}

// model resolves the model a thread runs on: its own (ThreadInfo.Model)
// through the agent's Providers, or the agent's default. An unknown
// provider or a model its provider does not list is an error wrapping
// ErrNotFound that names both.
func (e *engine) model(ctx context.Context, a *Agent, ref string) (threadModel, error) {
	a.models.mu.Lock()
	tm, ok := a.models.m[ref]
	a.models.mu.Unlock()
	if ok {
		return tm, nil
	}
	tm, err := e.resolveModel(ctx, a, ref)
	if errors.Is(err, errUnlisted) {
		return tm, nil // not cached: asked again next time
	}
	if err != nil {
		return threadModel{}, err
	}
	a.models.mu.Lock()
	a.models.m[ref] = tm
	a.models.mu.Unlock()
	return tm, nil
}

func (e *engine) resolveModel(ctx context.Context, a *Agent, ref string) (threadModel, error) {
	if ref == "" || ref == a.ProviderName+"/"+a.Model {
		tm := threadModel{provider: e.provider(a), id: a.Model, name: a.Model}
		if a.ProviderName != "" && a.Model != "" {
			tm.name = a.ProviderName + "/" + a.Model
		}
		models, err := tm.provider.Models(ctx)
		if err != nil {
			// The completion itself will say what is wrong with the
			// provider; without its listing the thread runs with no
			// context window (no compaction) and no image input.
			e.log.Warn("model provider did not list its models", "agent", a.Name, "err", err)
			return tm, errUnlisted
		}
		for _, m := range models {
			if m.ID == a.Model || a.Model == "" {
				tm.info = m
				break
			}
		}
		return tm, nil
	}
	mr, err := infinity.ParseModelRef(ref)
	if err != nil {
		return threadModel{}, fmt.Errorf("thread model: %w", err)
	}
	p := a.Providers[mr.Provider]
	if p == nil && mr.Provider == a.ProviderName {
		p = e.provider(a)
	}
	if p == nil {
		return threadModel{}, fmt.Errorf("thread model %s: agent %q has no provider %q (its models: %v): %w", ref, a.Name, mr.Provider, e.choices(ctx, a), infinity.ErrNotFound)
	}
	models, err := p.Models(ctx)
	if err != nil {
		return threadModel{}, fmt.Errorf("thread model %s: %w", ref, err)
	}
	for _, m := range models {
		if m.ID == mr.Model {
			return threadModel{provider: p, id: m.ID, name: ref, info: m}, nil
		}
	}
	return threadModel{}, fmt.Errorf("thread model %s: provider %q does not serve %q for agent %q (its models: %v): %w", ref, mr.Provider, mr.Model, a.Name, e.choices(ctx, a), infinity.ErrNotFound)
}

// choices lists the models an agent's threads may run on, as references.
func (e *engine) choices(ctx context.Context, a *Agent) []string {
	var out []string
	if a.ProviderName != "" && a.Model != "" {
		out = append(out, a.ProviderName+"/"+a.Model)
	}
	for name, p := range a.Providers {
		models, err := p.Models(ctx)
		if err != nil {
			continue
		}
		for _, m := range models {
			if ref := name + "/" + m.ID; ref != a.ProviderName+"/"+a.Model {
				out = append(out, ref)
			}
		}
	}
	slices.Sort(out)
	return out
}
