package actors

import (
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// TimedTool is a tool with a bound of its own on one call (an MCP
// server's timeout.call in the agent file): the engine gives its calls
// that bound, and a little more, instead of Config.ToolTimeout, so the
// tool's own limit is the one that ends a call and its result says so.
type TimedTool interface {
	infinity.Tool
	CallTimeout() time.Duration
}

// toolGrace is what the engine adds to a TimedTool's own bound.
const toolGrace = time.Second

// toolTimeout is the bound the engine gives one call of t.
func toolTimeout(t infinity.Tool, def time.Duration) time.Duration {
	if tt, ok := t.(TimedTool); ok {
		if d := tt.CallTimeout(); d > 0 {
			return d + toolGrace
		}
	}
	return def
}
