package chain_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/bedrock/chain"
)

var models = []infinity.ModelInfo{{ID: "m", ContextWindow: 1000, MaxOutput: 100}}

// isolate points the default AWS chain at nothing on disk and at no
// ambient credentials.
func isolate(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

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
	isolate(t)
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
