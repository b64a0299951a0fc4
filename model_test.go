package infinity_test

import (
	"errors"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
)

func TestValidateModels(t *testing.T) {
	ok := infinity.ModelInfo{ID: "m", ContextWindow: 1000, MaxOutput: 100}
	if err := infinity.ValidateModels([]infinity.ModelInfo{ok}); err != nil {
		t.Fatal(err)
	}
	for name, models := range map[string][]infinity.ModelInfo{
		"none":        nil,
		"no id":       {{ContextWindow: 1, MaxOutput: 1}},
		"twice":       {ok, ok},
		"no window":   {{ID: "m", MaxOutput: 1}},
		"no output":   {{ID: "m", ContextWindow: 1}},
		"output > cw": {{ID: "m", ContextWindow: 10, MaxOutput: 11}},
	} {
		if err := infinity.ValidateModels(models); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestParseModelRef(t *testing.T) {
	for in, want := range map[string]infinity.ModelRef{
		"anthropic/claude-sonnet-4-5":                 {"anthropic", "claude-sonnet-4-5"},
		"openai/llama3.1:8b":                          {"openai", "llama3.1:8b"},
		"bedrock/us.anthropic.claude-sonnet-4-5-v1:0": {"bedrock", "us.anthropic.claude-sonnet-4-5-v1:0"},
		"openai/meta/llama":                           {"openai", "meta/llama"},
	} {
		got, err := infinity.ParseModelRef(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseModelRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "anthropic", "/model", "anthropic/", "open ai/x", "openai/x\n"} {
		if _, err := infinity.ParseModelRef(in); !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("ParseModelRef(%q) = %v, want ErrInvalid", in, err)
		}
	}
}
