package daemon_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

const pricedAgent = `name: priced
model:
  provider: scripted
  script: s.json
models:
  - provider: scripted
    id: small
    context_window: 50000
    price: {input: 10, output: 20}
`

const pricedScript = `{"model":"m1","rules":[{"when":{},"reply":{"text":"hi there"}}]}`

func costNear(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil || math.Abs(*got-want) > 1e-9 {
		t.Errorf("%s: cost %v, want %v", what, fmtCost(got), want)
	}
}

func fmtCost(c *float64) any {
	if c == nil {
		return "null"
	}
	return *c
}

// Usage and cost: per thread from history, priced by the prices file and
// the agent file (which wins), unknown without a price; subtree totals;
// --model validated against the agent's models.
func TestUsageAndCost(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "prices.yaml"), []byte("models:\n  scripted/scripted: {input: 1000, output: 2000}\n  scripted/small: {input: 99, output: 99}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, c := startDaemon(t, home)
	info, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: "priced.yaml", AgentSource: daemon.AgentSource{YAML: pricedAgent, Script: pricedScript}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(info.Models, []string{"scripted/m1", "scripted/small"}) {
		t.Errorf("agent models = %q", info.Models)
	}

	// A model the agent does not list is refused with the choices.
	_, err = c.Start(t.Context(), daemon.StartRequest{Agent: info.Key, Text: "hello", Model: "openai/gpt-4.1"})
	wantCode(t, err, 400, daemon.CodeUnknownModel)
	var ae *daemon.APIError
	if errors.As(err, &ae); !reflect.DeepEqual(ae.Choices, []string{"scripted/m1", "scripted/small"}) {
		t.Errorf("choices = %q", ae.Choices)
	}
	_, err = c.Start(t.Context(), daemon.StartRequest{Text: "hello", Model: "scripted/small"})
	wantCode(t, err, 400, daemon.CodeUnknownModel) // the demo has one model

	// On the listed model: the agent file's price (it overrides the file's).
	small, err := c.Start(t.Context(), daemon.StartRequest{Agent: info.Key, Text: "hello", Model: "scripted/small"})
	if err != nil {
		t.Fatal(err)
	}
	v := waitStatus(t, c, small.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	if v.Model != "scripted/small" {
		t.Errorf("model = %q", v.Model)
	}
	if v.Tokens.Input == 0 || v.Tokens.Output == 0 {
		t.Fatalf("no tokens: %+v", v.Tokens)
	}
	want := (float64(v.Tokens.Input)*10 + float64(v.Tokens.Output)*20) / 1e6
	costNear(t, "thread on scripted/small", v.Cost, want)
	if v.Subtree.Threads != 1 || v.Subtree.Tokens != v.Tokens {
		t.Errorf("subtree = %+v", v.Subtree)
	}
	costNear(t, "its subtree", v.Subtree.Cost, want)

	// On the default, which has no price: tokens, and no cost.
	def, err := c.Start(t.Context(), daemon.StartRequest{Agent: "priced", Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	v = waitStatus(t, c, def.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	if v.Model != "scripted/m1" || v.Tokens.Output == 0 || v.Cost != nil || v.Subtree.Cost != nil {
		t.Errorf("unpriced thread: model %q, tokens %+v, cost %v, subtree %+v", v.Model, v.Tokens, fmtCost(v.Cost), v.Subtree)
	}

	// A followed stream shows each slice's usage.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var slices []daemon.SliceLine
	var priced []*float64
	done := make(chan error, 1)
	go func() {
		done <- c.Items(ctx, small.Thread, 0, true, func(l daemon.ItemLine) error {
			mu.Lock()
			defer mu.Unlock()
			if l.Slice != nil {
				slices = append(slices, *l.Slice)
				cancel()
			}
			if l.Item != nil && l.Item.Usage != nil {
				priced = append(priced, l.Cost)
			}
			return nil
		})
	}()
	time.Sleep(200 * time.Millisecond) // let the stream start
	if _, err := c.Send(t.Context(), small.Thread, daemon.MessageRequest{Text: "again"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow: %v", err)
	}
	mu.Lock()
	if len(slices) == 0 || slices[0].Usage.Output == 0 || slices[0].Model != "scripted/small" || slices[0].Cost == nil {
		t.Errorf("slice lines: %+v", slices)
	}
	if len(priced) == 0 || priced[0] == nil {
		t.Errorf("item costs: %v", priced)
	}
	mu.Unlock()

	// The demo's tree: every thread's cost from prices.yaml, and subtree
	// totals that add up.
	demo, err := c.Start(t.Context(), daemon.StartRequest{Text: "go"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, demo.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	tr, err := c.Tree(t.Context(), demo.Thread)
	if err != nil {
		t.Fatal(err)
	}
	sum := daemon.Totals{Threads: 1, Tokens: tr.Tokens}
	cost := *tr.Cost
	for _, k := range tr.Threads {
		if k.Model != "scripted/scripted" || k.Cost == nil {
			t.Errorf("child %s: model %q, cost %v", k.ID, k.Model, fmtCost(k.Cost))
			continue
		}
		sum.Threads++
		sum.Tokens = sum.Tokens.Add(k.Tokens)
		cost += *k.Cost
	}
	if tr.Subtree.Threads != 4 || tr.Subtree.Tokens != sum.Tokens {
		t.Errorf("tree subtree %+v, want %+v", tr.Subtree, sum)
	}
	costNear(t, "demo subtree", tr.Subtree.Cost, cost)
	roots, err := c.Threads(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roots {
		if r.ID == demo.Thread && !reflect.DeepEqual(r.Subtree, tr.Subtree) {
			t.Errorf("ls subtree %+v, tree subtree %+v", r.Subtree, tr.Subtree)
		}
	}
	one, err := c.Thread(t.Context(), demo.Thread)
	if err != nil || !reflect.DeepEqual(one.Subtree, tr.Subtree) {
		t.Errorf("thread subtree %+v (%v), tree subtree %+v", one.Subtree, err, tr.Subtree)
	}

	// Usage comes from history: a restart keeps it.
	d.Close()
	_, c = startDaemon(t, home)
	after, err := c.Tree(t.Context(), demo.Thread)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after.Subtree, tr.Subtree) {
		t.Errorf("after a restart: subtree %+v, was %+v", after.Subtree, tr.Subtree)
	}
	v, err = c.Thread(t.Context(), small.Thread)
	if err != nil || v.Model != "scripted/small" || v.Cost == nil {
		t.Errorf("after a restart: %+v, %v", v, err)
	}
}

func TestPricesFile(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	home := t.TempDir()
	bad := filepath.Join(home, "bad.yaml")
	if err := os.WriteFile(bad, []byte("models:\n  scripted/scripted: {input: -1, output: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0", Logger: quiet, Prices: bad})
	if !errors.Is(err, infinity.ErrInvalid) {
		t.Fatalf("Open with a bad prices file: %v", err)
	}
	_, err = daemon.Open(t.Context(), daemon.Options{Home: home, Addr: "127.0.0.1:0", Logger: quiet, Prices: filepath.Join(home, "none.yaml")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open with a missing prices file: %v", err)
	}
	// Without any prices file, costs are unknown, never made up.
	_, c := startDaemon(t, home)
	st, err := c.Start(t.Context(), daemon.StartRequest{Text: "go"})
	if err != nil {
		t.Fatal(err)
	}
	v := waitStatus(t, c, st.Thread, daemon.StatusWaiting, daemon.WaitingForInput)
	if v.Tokens.Output == 0 || v.Cost != nil || v.Subtree.Cost != nil {
		t.Errorf("no prices: tokens %+v, cost %v, subtree %+v", v.Tokens, fmtCost(v.Cost), v.Subtree)
	}
}
