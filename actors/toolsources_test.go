package actors_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

type namedTool string

func (n namedTool) Spec() infinity.ToolSpec { return infinity.ToolSpec{Name: string(n)} }
func (n namedTool) Invoke(context.Context, infinity.ToolEnv, infinity.ToolCall) (*infinity.ToolResult, error) {
	return nil, nil
}

type source struct {
	tools []infinity.Tool
	err   error
}

func (s source) Tools(context.Context, infinity.ThreadID) ([]infinity.Tool, error) {
	return s.tools, s.err
}

// Joined sources: every tool once, a name offered twice by none, errors
// kept beside what did load.
func TestToolSources(t *testing.T) {
	if actors.ToolSources() != nil || actors.ToolSources(nil, nil) != nil {
		t.Fatal("no sources should join to nil")
	}
	one := source{tools: []infinity.Tool{namedTool("a")}}
	if got := actors.ToolSources(nil, one); got == nil {
		t.Fatal("one source lost")
	}
	down := errors.New("server down")
	j := actors.ToolSources(
		source{tools: []infinity.Tool{namedTool("a"), namedTool("x")}},
		source{tools: []infinity.Tool{namedTool("b"), namedTool("x")}, err: down},
		source{tools: []infinity.Tool{namedTool("x")}},
	)
	tools, err := j.Tools(context.Background(), "t1")
	var names []string
	for _, tl := range tools {
		names = append(names, tl.Spec().Name)
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("tools = %v, want a and b", names)
	}
	if !errors.Is(err, down) || !errors.Is(err, infinity.ErrInvalid) || strings.Count(err.Error(), `"x"`) != 1 {
		t.Errorf("error = %v, want the source's error and one report of x", err)
	}
}
