package bedrock

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	infinity "github.com/infinity-runtime/infinity"
)

// FuzzToolInput checks the one decoder of outside input this package owns
// (the SDK decodes the frames): a toolUse block's input, assembled from
// the fragments of its deltas. Whatever the fragments, a call that comes
// out has a JSON object for Args, and a call held back fails the stream
// unless it stopped at max_tokens.
func FuzzToolInput(f *testing.F) {
	for _, s := range []string{`{"city": "Paris"}`, ``, ` `, `{"a":`, `[1]`, `"x"`, "\xff", `{"a":1}{}`, `{"n":1e999}`} {
		f.Add([]byte(s), uint8(3), false)
	}
	f.Fuzz(func(t *testing.T, input []byte, cut uint8, maxTokens bool) {
		var st state
		events := []types.ConverseStreamOutput{&types.ConverseStreamOutputMemberContentBlockStart{Value: types.ContentBlockStartEvent{
			ContentBlockIndex: aws.Int32(1),
			Start:             &types.ContentBlockStartMemberToolUse{Value: types.ToolUseBlockStart{ToolUseId: aws.String("t"), Name: aws.String("n")}},
		}}}
		at := min(int(cut), len(input))
		for _, frag := range []string{string(input[:at]), string(input[at:])} {
			events = append(events, &types.ConverseStreamOutputMemberContentBlockDelta{Value: types.ContentBlockDeltaEvent{
				ContentBlockIndex: aws.Int32(1),
				Delta:             &types.ContentBlockDeltaMemberToolUse{Value: types.ToolUseBlockDelta{Input: aws.String(frag)}},
			}})
		}
		reason := types.StopReasonToolUse
		if maxTokens {
			reason = types.StopReasonMaxTokens
		}
		events = append(events,
			&types.ConverseStreamOutputMemberContentBlockStop{Value: types.ContentBlockStopEvent{ContentBlockIndex: aws.Int32(1)}},
			&types.ConverseStreamOutputMemberMessageStop{Value: types.MessageStopEvent{StopReason: reason}},
			&types.ConverseStreamOutputMemberMetadata{Value: types.ConverseStreamMetadataEvent{}},
		)
		var calls []*infinity.ToolCall
		for _, e := range events {
			ev, err := st.handle(e)
			if err != nil {
				t.Fatalf("%q: %v", input, err)
			}
			if ev.Kind == infinity.StreamToolCall {
				calls = append(calls, ev.Call)
			}
		}
		_, err := st.done()
		for _, c := range calls {
			d := json.NewDecoder(bytes.NewReader(c.Args))
			d.UseNumber() // numbers stay exact, as jsonValue reads them back
			var obj map[string]any
			if d.Decode(&obj) != nil || d.More() {
				t.Fatalf("%q: Args %q is not a JSON object", input, c.Args)
			}
		}
		if len(calls) == 0 && !maxTokens && err == nil {
			t.Fatalf("%q: the call was dropped without an error", input)
		}
		if len(calls) == 1 && err != nil {
			t.Fatalf("%q: a whole call and an error: %v", input, err)
		}
	})
}
