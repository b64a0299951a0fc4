// Command embedding is a small HTTP service that embeds Infinity through
// its public API only (package embedded, actors, a model provider and a
// tool of its own): POST /ask {"text": "..."} starts a thread, waits for
// its answer and returns it; GET /threads lists the threads.
//
//	go run ./examples/embedding                 # in memory, on 127.0.0.1:8090
//	go run ./examples/embedding -dir ./state    # durable: threads survive restarts
//	curl -s localhost:8090/ask -d '{"text":"How many words are in: the quick brown fox?"}'
//
// It answers offline with a model provider of its own (counter, which
// calls the service's word_count tool with the question, then says what the
// tool answered); swap in any infinity.ModelProvider (models/anthropic,
// models/openai, models/bedrock) for a real one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"iter"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/embedded"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	dir := flag.String("dir", "", "keep threads in this directory (default: in memory)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *dir); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, dir string) error {
	rt, err := open(ctx, dir)
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	srv := &http.Server{Addr: addr, Handler: handler(rt), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	log.Printf("listening on http://%s (POST /ask, GET /threads)", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// open makes the runtime: the service's agent, its tool and the model.
func open(ctx context.Context, dir string) (*embedded.Runtime, error) {
	o := embedded.Options{Config: actors.Config{
		Model:  counter{},
		Agents: []actors.Agent{{Name: "counter", System: "You count words with word_count.", Tools: []infinity.Tool{wordCount{}}}},
	}}
	if dir == "" {
		return embedded.NewInMemory(o)
	}
	return embedded.Open(ctx, dir, o)
}

// counter is the service's model provider: it asks word_count about the
// user's text, then answers with the count.
type counter struct{}

func (counter) Models(context.Context) ([]infinity.ModelInfo, error) {
	return []infinity.ModelInfo{{ID: "counter-1", ContextWindow: 100000, MaxOutput: 1000}}, nil
}

func (counter) Stream(_ context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) {
		last := req.Items[len(req.Items)-1]
		if last.Kind == infinity.KindUser {
			args, _ := json.Marshal(map[string]string{"text": last.Text})
			call := &infinity.ToolCall{ID: infinity.DeriveID("call_", string(req.Thread), fmt.Sprint(len(req.Items))), Name: "word_count", Args: args}
			if yield(infinity.StreamEvent{Kind: infinity.StreamToolCall, Call: call}, nil) {
				yield(infinity.StreamEvent{Kind: infinity.StreamDone, Stop: infinity.StopToolUse}, nil)
			}
			return
		}
		text := "I counted " + last.Result.Text() + " words."
		if yield(infinity.StreamEvent{Kind: infinity.StreamText, Text: text}, nil) {
			yield(infinity.StreamEvent{Kind: infinity.StreamDone, Stop: infinity.StopEnd}, nil)
		}
	}
}

// wordCount is the service's own (synchronous) tool.
type wordCount struct{}

func (wordCount) Spec() infinity.ToolSpec {
	return infinity.ToolSpec{Name: "word_count", Description: "Counts the words of a text.",
		Schema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)}
}

func (wordCount) Invoke(_ context.Context, _ infinity.ToolEnv, call infinity.ToolCall) (*infinity.ToolResult, error) {
	var a struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(call.Args, &a); err != nil {
		return nil, fmt.Errorf("word_count: arguments: %w", err)
	}
	n := len(strings.Fields(a.Text))
	return &infinity.ToolResult{Parts: []infinity.Part{{Type: "text", Text: fmt.Sprint(n)}}}, nil
}

func handler(rt *embedded.Runtime) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ask", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Text string `json:"text"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "want {\"text\": \"...\"}", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		id, err := rt.Start(ctx, actors.StartOptions{Text: req.Text})
		if errors.Is(err, infinity.ErrInvalid) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		answer, err := rt.Wait(ctx, id, actors.UntilAnswered)
		if err != nil {
			http.Error(w, err.Error(), http.StatusGatewayTimeout)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"thread": string(id), "answer": answer.Text})
	})
	mux.HandleFunc("GET /threads", func(w http.ResponseWriter, r *http.Request) {
		threads, err := rt.Threads(r.Context(), false)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		type row struct {
			ID    infinity.ThreadID `json:"id"`
			Items int               `json:"items"`
			Busy  bool              `json:"busy"`
		}
		out := []row{}
		for _, t := range threads {
			out = append(out, row{t.Info.ID, t.Items, t.Busy})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	return mux
}
