package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/pricing"
)

// PricesFile is the daemon's default prices file, under its home.
const PricesFile = "prices.yaml"

// loadPrices reads the prices file: path when given (it must exist), else
// HOME/prices.yaml when there is one. No file means no prices: costs are
// unknown, never guessed.
func loadPrices(home, path string) (*pricing.Table, error) {
	explicit := path != ""
	if !explicit {
		path = filepath.Join(home, PricesFile)
	}
	t, err := pricing.Load(path)
	switch {
	case err == nil:
		return t, nil
	case !explicit && errors.Is(err, fs.ErrNotExist):
		return nil, nil
	}
	return nil, fmt.Errorf("daemon: prices: %w", err)
}

// Totals are the tokens and cost of a thread and all its descendants.
type Totals struct {
	// Threads counts the thread and its descendants.
	Threads int            `json:"threads"`
	Tokens  infinity.Usage `json:"tokens"`
	// Cost is in USD; null when a model that answered has no price.
	Cost *float64 `json:"cost"`
}

func (t Totals) add(u Totals) Totals {
	if t.Threads == 0 { // nothing yet: no cost is known zero
		return u
	}
	return Totals{Threads: t.Threads + u.Threads, Tokens: t.Tokens.Add(u.Tokens), Cost: addCost(t.Cost, u.Cost)}
}

// addCost adds two costs; unknown (nil) wins.
func addCost(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	return new(*a + *b)
}

// agentModels are an agent's model choices and prices, as the daemon keeps
// them per agent key.
type agentModels struct {
	// Default is the agent's default model, "provider/model".
	Default string
	// Choices are the models its threads may run on, the default first.
	Choices []string
	// Prices are the daemon's prices overridden by the agent file's.
	Prices *pricing.Table
	// Unavailable are the providers among Choices that could not be set
	// up (agentfile.Registry.Unavailable): their models cannot run.
	Unavailable map[string]error
	// Budget is the agent file's budget for its trees (nil: none).
	Budget *infinity.Budget
}

// threadModel is the model a thread runs on: its own, else its agent's
// default.
func threadModel(info infinity.ThreadInfo, am agentModels) string {
	if info.Model != "" {
		return info.Model
	}
	return am.Default
}

// itemModel is the model that gave a response: the one recorded on it,
// else the thread's.
func itemModel(it infinity.Item, thread string) string {
	if it.Model != "" {
		return it.Model
	}
	return thread
}

// costOf is what the thread's own items cost; nil when one model that
// answered has no price.
func costOf(items []infinity.Item, thread string, prices *pricing.Table) *float64 {
	total := 0.0
	for _, it := range items {
		if it.Usage == nil {
			continue
		}
		usd := itemCost(it, thread, prices)
		if usd == nil {
			return nil
		}
		total += *usd
	}
	return &total
}

// itemCost is what one response cost; nil when unknown or not a response.
func itemCost(it infinity.Item, thread string, prices *pricing.Table) *float64 {
	if it.Usage == nil {
		return nil
	}
	usd, ok := prices.Cost(itemModel(it, thread), *it.Usage)
	if !ok {
		return nil
	}
	return &usd
}

// SliceLine is a slice's usage, in a followed item stream.
type SliceLine struct {
	Usage infinity.Usage `json:"usage"`
	// Items is how many items the slice added.
	Items int `json:"items"`
	// Model is the thread's model ("provider/model").
	Model string `json:"model,omitempty"`
	// Cost is in USD; null when the model has no price.
	Cost *float64 `json:"cost"`
}

// CompactedLine says a thread's history was compacted, in a followed item
// stream: a summary replaces its first Covers own items and everything it
// inherited.
type CompactedLine struct {
	Covers int `json:"covers"`
	// Position is the thread's own length when the summary was made.
	Position int `json:"position"`
	// Chars is the summary's length in characters.
	Chars int `json:"chars"`
}

// live keeps the last slice and compaction events of each followed thread
// in memory, for followed item streams (the daemon adds a thread's events
// only while a view follows it).
type live struct {
	mu     sync.Mutex
	seq    uint64
	events map[infinity.ThreadID][]liveEvent
}

type liveEvent struct {
	seq uint64
	ev  actors.Event
}

// liveKeep bounds the events kept per thread.
const liveKeep = 32

func (l *live) add(ev actors.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.events == nil {
		l.events = map[infinity.ThreadID][]liveEvent{}
	}
	l.seq++
	evs := append(l.events[ev.Thread], liveEvent{seq: l.seq, ev: ev})
	if len(evs) > liveKeep {
		evs = evs[len(evs)-liveKeep:]
	}
	l.events[ev.Thread] = evs
}

// since returns the thread's events after seq, and the newest seq.
func (l *live) since(id infinity.ThreadID, seq uint64) ([]actors.Event, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []actors.Event
	for _, e := range l.events[id] {
		if e.seq > seq {
			out = append(out, e.ev)
		}
	}
	return out, l.seq
}

// forget drops a closed thread's events.
func (l *live) forget(id infinity.ThreadID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.events, id)
}

// cost prices a model call of an agent's thread, for the metrics.
func (r *registry) cost(agent, model string, u infinity.Usage) (float64, bool) {
	return r.modelsOf(agent).Prices.Cost(model, u)
}
