package main

import (
	"context"
	"testing"

	"github.com/infinity-runtime/infinity/actors"
)

func TestParseModelLimit(t *testing.T) {
	key, lim, err := parseModelLimit("openai/gpt-4.1=concurrent=5,rpm=600, tpm=400000")
	if err != nil || key != "openai/gpt-4.1" || lim != (actors.ModelLimit{Concurrent: 5, RPM: 600, TPM: 400000}) {
		t.Fatalf("%q %+v %v", key, lim, err)
	}
	for _, bad := range []string{"openai", "=rpm=1", "openai/=rpm=1", "openai=rpm", "openai=rpm=0", "openai=rps=3", "openai=rpm=x"} {
		if _, _, err := parseModelLimit(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The daemon's --model-limit and --max-model-calls reach its runtime:
// status shows them.
func TestDaemonModelLimitFlags(t *testing.T) {
	home := t.TempDir()
	t.Setenv("INFINITY_HOME", home)
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"daemon", "--addr", "127.0.0.1:0", "--max-model-calls", "64", "--model-limit", "openai=rpm=60", "--model-limit", "anthropic/claude-haiku-4-5=concurrent=2"}, &stdout, &stderr)
	}()
	c := waitDaemon(t, home, done)
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]actors.ModelLimit{"openai": {RPM: 60}, "anthropic/claude-haiku-4-5": {Concurrent: 2}}
	if len(st.ModelLimits) != 2 || st.ModelLimits["openai"] != want["openai"] || st.ModelLimits["anthropic/claude-haiku-4-5"] != want["anthropic/claude-haiku-4-5"] || st.ModelCalls.Max != 64 {
		t.Fatalf("status: limits %+v, calls %+v", st.ModelLimits, st.ModelCalls)
	}
	cancel()
	<-done
	if _, _, code := cmdCode(t, "daemon", "--addr", "127.0.0.1:0", "--model-limit", "openai=rps=1"); code != 2 {
		t.Errorf("a bad --model-limit: exit %d, want 2", code)
	}
	if _, errOut, code := cmdCode(t, "daemon", "--addr", "127.0.0.1:0", "--prices", "no-such-prices.yaml"); code != 3 {
		t.Errorf("a --prices file that is not there: exit %d, want 3 (%s)", code, errOut)
	}
}
