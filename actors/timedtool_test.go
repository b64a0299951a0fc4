package actors

import (
	"context"
	"testing"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

type timed struct{ d time.Duration }

func (timed) Spec() infinity.ToolSpec { return infinity.ToolSpec{Name: "timed"} }
func (timed) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	return nil, nil
}
func (t timed) CallTimeout() time.Duration { return t.d }

type plain struct{}

func (plain) Spec() infinity.ToolSpec { return infinity.ToolSpec{Name: "plain"} }
func (plain) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	return nil, nil
}

// A tool with a bound of its own gets it (and a second more) instead of
// the engine's default; one without, or with none set, gets the default.
func TestToolTimeout(t *testing.T) {
	def := 30 * time.Second
	if got := toolTimeout(timed{2 * time.Minute}, def); got != 2*time.Minute+toolGrace {
		t.Errorf("timed tool: %v", got)
	}
	if got := toolTimeout(timed{}, def); got != def {
		t.Errorf("timed tool without a bound: %v", got)
	}
	if got := toolTimeout(plain{}, def); got != def {
		t.Errorf("plain tool: %v", got)
	}
}
