package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The service answers through the embedded runtime, its own model and its
// own tool, in memory and durably across a restart.
func TestService(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		rt, err := open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(handler(rt))
		resp, err := http.Post(srv.URL+"/ask", "application/json", strings.NewReader(`{"text":"the quick brown fox"}`))
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Thread, Answer string }
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 200 || got.Answer != "I counted 4 words." || got.Thread == "" {
			t.Fatalf("dir %q: %d %+v", dir, resp.StatusCode, got)
		}
		if resp, _ := http.Post(srv.URL+"/ask", "application/json", strings.NewReader(`{"text":" "}`)); resp.StatusCode != 400 {
			t.Errorf("an empty question: %d, want 400", resp.StatusCode)
		}
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rt.Close(ctx)
		cancel()
		if dir == "" {
			continue
		}
		// The durable service keeps its threads across a restart.
		rt, err = open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		threads, err := rt.Threads(t.Context(), false)
		if err != nil || len(threads) != 1 || string(threads[0].Info.ID) != got.Thread || threads[0].Items != 4 {
			t.Fatalf("after a restart: %+v, %v", threads, err)
		}
		rt.Close(context.Background())
	}
}
