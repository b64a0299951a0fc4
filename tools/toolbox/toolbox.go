// Package toolbox is the RAP tool server that `infinity tools serve` runs:
// a handful of tools that show what asynchronous tools can do, written
// with package rapserver. Copy it to start your own.
//
// The tools:
//
//   - current_time {zone}: the time now in an IANA zone ("Europe/Paris").
//   - watch_webhook {name}: a subscription; every POST to
//     {base}/hooks/{name} becomes an event of it, its body the event's text
//     (`curl -d 'disk 91% full' http://127.0.0.1:PORT/hooks/alerts`).
//   - timer_events {every_seconds, count}: a subscription whose events
//     come every every_seconds, count of them, the last one final.
//   - request_approval {question, choices}: asks the user (a user_choice;
//     `infinity answer THREAD CHOICE` answers) and returns the choice.
//   - run_task {title, steps, step_ms}: a long task that shows its progress
//     (a "progress" view updated after every step) and returns a summary
//     with display segments for people.
//
// MCP serves two synchronous tools over MCP's streamable HTTP, word_count
// and convert_temperature, for agents that use MCP servers.
package toolbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zones work on machines without a zoneinfo database

	"github.com/infinity-runtime/infinity/tools/rap"
	"github.com/infinity-runtime/infinity/tools/rapserver"
)

// New returns the toolbox server. now is its clock (nil: time.Now).
func New(now func() time.Time) *Box {
	b := newBox(now)
	b.Server = &rapserver.Server{
		Name:        "toolbox",
		Description: "Example tools of Infinity: time, webhooks, timers, approvals and a long task with progress",
		Tools:       []rapserver.Tool{b.currentTime(), b.watchWebhook(), b.timerEvents(), b.requestApproval(), b.runTask()},
		Extra:       b.extra(),
	}
	return b
}

// NewInline returns the toolbox for hosts that freeze the process between
// requests, such as AWS Lambda (cmd/infinity-toolbox-lambda): only the
// tools that finish within their invocation's request, current_time and
// run_task, with calls run inline (rapserver.Server.Inline). No webhooks
// and no MCP.
func NewInline(now func() time.Time) *Box {
	b := newBox(now)
	b.Server = &rapserver.Server{
		Name:        "toolbox",
		Description: "Example tools of Infinity, for AWS Lambda: time in a zone and a task with progress",
		Tools:       []rapserver.Tool{b.currentTime(), b.runTask()},
		Inline:      true,
	}
	return b
}

func newBox(now func() time.Time) *Box {
	if now == nil {
		now = time.Now
	}
	return &Box{now: now, hooks: map[string]map[chan string]bool{}}
}

// Box is the toolbox: a rapserver.Server plus the webhook route.
type Box struct {
	*rapserver.Server
	now   func() time.Time
	mu    sync.Mutex
	hooks map[string]map[chan string]bool // webhook subscriptions (their event channels) by name
}

func schema(s string) json.RawMessage { return json.RawMessage(s) }

func (b *Box) currentTime() rapserver.Tool {
	return rapserver.Tool{
		Name:        "current_time",
		Description: "The current date and time in a time zone.",
		InputSchema: schema(`{"type":"object","properties":{"zone":{"type":"string","description":"an IANA time zone such as Europe/Paris; default UTC"}},"additionalProperties":false}`),
		Annotations: map[string]any{"readOnly": true},
		Run: func(ctx context.Context, c *rapserver.Call) error {
			var a struct {
				Zone string `json:"zone"`
			}
			if err := c.Args(&a); err != nil {
				return err
			}
			if a.Zone == "" {
				a.Zone = "UTC"
			}
			loc, err := time.LoadLocation(a.Zone)
			if err != nil {
				return fmt.Errorf("unknown time zone %q (use an IANA name such as Europe/Paris)", a.Zone)
			}
			now := b.now().In(loc)
			return c.Result(ctx, fmt.Sprintf("%s in %s (%s)", now.Format("Monday 2 January 2006, 15:04:05 MST"), a.Zone, now.Format(time.RFC3339)))
		},
	}
}

func (b *Box) watchWebhook() rapserver.Tool {
	return rapserver.Tool{
		Name: "watch_webhook",
		Description: "Subscribe to a named webhook: every POST to the tool server's /hooks/{name} arrives as an event, " +
			"its body as the text. The subscription lasts until it is cancelled (cancel_subscription).",
		InputSchema: schema(`{"type":"object","properties":{"name":{"type":"string","pattern":"^[a-zA-Z0-9_-]{1,64}$"}},"required":["name"],"additionalProperties":false}`),
		Annotations: map[string]any{"longRunning": true},
		Run: func(ctx context.Context, c *rapserver.Call) error {
			var a struct {
				Name string `json:"name"`
			}
			if err := c.Args(&a); err != nil {
				return err
			}
			if !validHook(a.Name) {
				return fmt.Errorf("webhook name %q: use 1-64 letters, digits, _ or -", a.Name)
			}
			sub := make(chan string, 64)
			b.mu.Lock()
			if b.hooks[a.Name] == nil {
				b.hooks[a.Name] = map[chan string]bool{}
			}
			b.hooks[a.Name][sub] = true
			b.mu.Unlock()
			defer func() {
				b.mu.Lock()
				delete(b.hooks[a.Name], sub)
				if len(b.hooks[a.Name]) == 0 {
					delete(b.hooks, a.Name)
				}
				b.mu.Unlock()
			}()
			if err := c.Subscribed(ctx, fmt.Sprintf("Subscribed to webhook %q: each POST to /hooks/%s arrives as an event.", a.Name, a.Name)); err != nil {
				return err
			}
			for {
				select {
				case text := <-sub:
					if err := c.Event(ctx, text, false); err != nil {
						return err
					}
				case <-ctx.Done(): // cancelled, thread closed or server closing
					return nil
				}
			}
		},
	}
}

func validHook(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// extra serves what is not RAP: the webhooks, and the MCP server at /mcp.
func (b *Box) extra() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{name}", b.serveHook)
	mux.Handle("/mcp", MCP())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: this is a RAP tool server (manifest at /.well-known/rap-toolset), with webhooks at POST /hooks/{name} and an MCP server at /mcp", http.StatusNotFound)
	})
	return mux
}

// serveHook is POST /hooks/{name}: the body (up to 64 KiB of text) goes to
// every subscription of the webhook.
func (b *Box) serveHook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !validHook(name) {
		http.Error(w, fmt.Sprintf("webhook name %q: use 1-64 letters, digits, _ or -", name), http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil || len(body) > 64<<10 {
		http.Error(w, "the body must be at most 64 KiB", http.StatusRequestEntityTooLarge)
		return
	}
	text := strings.TrimSpace(string(body))
	if text == "" {
		text = "(empty POST)"
	}
	b.mu.Lock()
	n := 0
	for sub := range b.hooks[name] {
		select {
		case sub <- text:
			n++
		default: // a subscription 64 events behind drops this one
		}
	}
	b.mu.Unlock()
	if n == 0 {
		http.Error(w, fmt.Sprintf("no subscription watches webhook %q", name), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"delivered\":%d}\n", n)
}

func (b *Box) timerEvents() rapserver.Tool {
	return rapserver.Tool{
		Name:        "timer_events",
		Description: "Subscribe to a timer: an event every every_seconds seconds, count of them; the last one ends the subscription.",
		InputSchema: schema(`{"type":"object","properties":{"every_seconds":{"type":"number","exclusiveMinimum":0,"maximum":86400},"count":{"type":"integer","minimum":1,"maximum":1000}},"required":["every_seconds","count"],"additionalProperties":false}`),
		Annotations: map[string]any{"longRunning": true},
		Run: func(ctx context.Context, c *rapserver.Call) error {
			var a struct {
				Every float64 `json:"every_seconds"`
				Count int     `json:"count"`
			}
			if err := c.Args(&a); err != nil {
				return err
			}
			if a.Every <= 0 || a.Every > 86400 || a.Count < 1 || a.Count > 1000 {
				return fmt.Errorf("every_seconds must be in (0, 86400] and count in [1, 1000]; got %v and %d", a.Every, a.Count)
			}
			every := time.Duration(a.Every * float64(time.Second))
			if err := c.Subscribed(ctx, fmt.Sprintf("Subscribed: %d events, one every %s.", a.Count, every)); err != nil {
				return err
			}
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 1; i <= a.Count; i++ {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return nil
				}
				if err := c.Event(ctx, fmt.Sprintf("tick %d of %d at %s", i, a.Count, b.now().UTC().Format(time.RFC3339)), i == a.Count); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func (b *Box) requestApproval() rapserver.Tool {
	return rapserver.Tool{
		Name:        "request_approval",
		Description: "Ask the user to approve something and wait for the answer (the thread sleeps meanwhile). Returns the choice made.",
		InputSchema: schema(`{"type":"object","properties":{"question":{"type":"string"},"choices":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":20}},"required":["question"],"additionalProperties":false}`),
		Run: func(ctx context.Context, c *rapserver.Call) error {
			var a struct {
				Question string   `json:"question"`
				Choices  []string `json:"choices"`
			}
			if err := c.Args(&a); err != nil {
				return err
			}
			if strings.TrimSpace(a.Question) == "" {
				return fmt.Errorf("question is empty")
			}
			if len(a.Choices) == 0 {
				a.Choices = []string{"approve", "reject"}
			}
			n, err := c.AskUser(ctx, a.Question, a.Choices, 0)
			if err != nil {
				return err
			}
			return c.Result(ctx, fmt.Sprintf("The user chose %q.", a.Choices[n]))
		},
	}
}

func (b *Box) runTask() rapserver.Tool {
	return rapserver.Tool{
		Name:        "run_task",
		Description: "Run a long task of several steps; people see its progress as it goes. Returns a summary.",
		InputSchema: schema(`{"type":"object","properties":{"title":{"type":"string"},"steps":{"type":"integer","minimum":1,"maximum":100},"step_ms":{"type":"integer","minimum":0,"maximum":60000}},"required":["title"],"additionalProperties":false}`),
		Run: func(ctx context.Context, c *rapserver.Call) error {
			a := struct {
				Title  string `json:"title"`
				Steps  int    `json:"steps"`
				StepMS int    `json:"step_ms"`
			}{Steps: 3, StepMS: 500}
			if err := c.Args(&a); err != nil {
				return err
			}
			if a.Steps < 1 || a.Steps > 100 || a.StepMS < 0 || a.StepMS > 60000 {
				return fmt.Errorf("steps must be in [1, 100] and step_ms in [0, 60000]; got %d and %d", a.Steps, a.StepMS)
			}
			// The runtime waits 5 s for an invocation's answer before it
			// tries again, and here the answer comes once the task is done.
			if b.Inline && a.Steps*a.StepMS > 4000 {
				return fmt.Errorf("here a task must finish within its request: steps × step_ms at most 4000, got %d", a.Steps*a.StepMS)
			}
			start := b.now()
			for i := 1; i <= a.Steps; i++ {
				select {
				case <-time.After(time.Duration(a.StepMS) * time.Millisecond):
				case <-ctx.Done():
					return nil
				}
				if err := c.View(ctx, "progress", map[string]any{"title": a.Title, "done": i, "total": a.Steps}); err != nil {
					return err
				}
			}
			took := b.now().Sub(start).Round(time.Millisecond)
			text, _ := json.Marshal(fmt.Sprintf("%s: %d of %d steps done in %s", a.Title, a.Steps, a.Steps, took))
			return c.Result(ctx, fmt.Sprintf("Task %q finished: %d steps in %s.", a.Title, a.Steps, took),
				rap.Segment{Type: "text", Content: text})
		},
	}
}
