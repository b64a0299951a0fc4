package chain_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/awstest"
	"github.com/infinity-runtime/infinity/models/bedrock/chain"
)

var models = []infinity.ModelInfo{{ID: "m", ContextWindow: 1000, MaxOutput: 100}}

// The chain's region, credentials and endpoint reach the requests.
func TestFromConfig(t *testing.T) {
	var auth atomic.Value
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", "ValidationException")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"message":"checked"}`))
	}))
	defer s.Close()
	awstest.Isolate(t)
	if _, err := chain.FromConfig(context.Background(), models); !errors.Is(err, infinity.ErrInvalid) {
		t.Errorf("no region: err = %v", err)
	}
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", s.URL)
	p, err := chain.FromConfig(context.Background(), models)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range p.Stream(context.Background(), infinity.CompletionRequest{Items: []infinity.Item{{Kind: infinity.KindUser, Text: "x"}}}) {
		if err == nil || !strings.Contains(err.Error(), "checked") {
			t.Fatalf("stream: %v, want the server's error", err)
		}
		break
	}
	a, _ := auth.Load().(string)
	if !strings.Contains(a, "Credential=AKIDTEST/") || !strings.Contains(a, "/eu-west-3/bedrock/") {
		t.Fatalf("authorization %q", a)
	}
}

// The chain's endpoint settings and attempts reach the provider.
func TestFromConfigEndpointAndAttempts(t *testing.T) {
	var hits atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Amzn-ErrorType", "ServiceUnavailableException")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"message":"busy"}`))
	}))
	defer s.Close()
	awstest.Isolate(t)
	t.Setenv("AWS_REGION", "us-west-2")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_USE_FIPS_ENDPOINT", "true")
	p, err := chain.FromConfig(context.Background(), models)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Endpoint(); got != "https://bedrock-runtime-fips.us-west-2.amazonaws.com" {
		t.Errorf("FIPS endpoint %s", got)
	}
	t.Setenv("AWS_USE_FIPS_ENDPOINT", "false")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", s.URL)
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
	if p, err = chain.FromConfig(context.Background(), models); err != nil {
		t.Fatal(err)
	}
	if p.Endpoint() != s.URL {
		t.Errorf("endpoint %s, want %s", p.Endpoint(), s.URL)
	}
	for _, err := range p.Stream(context.Background(), infinity.CompletionRequest{Items: []infinity.Item{{Kind: infinity.KindUser, Text: "x"}}}) {
		if !errors.Is(err, infinity.ErrRetryable) || !strings.Contains(err.Error(), "busy") {
			t.Fatalf("stream: %v", err)
		}
		break
	}
	if hits.Load() != 2 {
		t.Errorf("%d attempts, want AWS_MAX_ATTEMPTS=2", hits.Load())
	}
}
