package replay_test

import (
	"context"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/openai"
	"github.com/infinity-runtime/infinity/models/providertest"
)

func TestZZDebug(t *testing.T) {
	srv := newOpenAIServer(t)
	p, _ := openai.New(openai.Config{BaseURL: srv.URL + "/v1", APIKey: secretKey, MaxRetries: -1,
				Models: []infinity.ModelInfo{{ID: "gpt-test", ContextWindow: 128000, MaxOutput: 4096}}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := providertest.UserText("hi")
	req.System = `Your thread ID is tabc. The root thread ID is tabc. Your thread stack (root first) is ["tabc"].`
	r := providertest.Collect(ctx, p, req)
	t.Logf("%+v", r)
}
