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
