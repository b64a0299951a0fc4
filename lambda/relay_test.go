package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/lambda"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// decodingForwarder forwards with the SQS adapter's decoder, recording the
// messages instead of sending them.
type decodingForwarder struct{ got []infinity.InputMessage }

func (d *decodingForwarder) Forward(_ context.Context, body string) error {
	msg, _, err := sqs.DecodeRelay(body)
	if err != nil {
		return err
	}
	d.got = append(d.got, msg)
	return nil
}

func TestRelayRealEvent(t *testing.T) {
	payload, err := os.ReadFile("testdata/sqs-relay-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, withDead := range []bool{false, true} {
		t.Run(fmt.Sprintf("dead-letter=%v", withDead), func(t *testing.T) {
			fwd, dead := &decodingForwarder{}, &recorder{}
			r := &lambda.Relay{Forward: fwd}
			if withDead {
				r.DeadLetter = dead
			}
			out, err := awslambda.NewHandler(r.Handle).Invoke(t.Context(), payload)
			if err != nil {
				t.Fatal(err)
			}
			var resp events.SQSEventResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			if len(fwd.got) != 1 || fwd.got[0].ID != "call_wake_1" || fwd.got[0].GroupID != "thread-alpha" {
				t.Fatalf("forwarded %+v", fwd.got)
			}
			want := []string{"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}
			if withDead {
				want = nil
				if got := dead.forwarded(); len(got) != 1 || got[0] != "not json at all" {
					t.Fatalf("dead-lettered %q", got)
				}
			}
			if got := failures(resp); !slices.Equal(got, want) {
				t.Fatalf("failures %v, want %v", got, want)
			}
		})
	}
}

// The receiver fed real Function URL event JSON: without a key it accepts
// nothing (501); with one, a callback whose token is not the call's is
// refused (401), and a genuine one reaches the thread's message group.
func TestReceiverRealEvent(t *testing.T) {
	payload, err := os.ReadFile("testdata/function-url-request.json")
	if err != nil {
		t.Fatal(err)
	}
	invoke := func(t *testing.T, rc lambda.Receiver, payload []byte) events.LambdaFunctionURLResponse {
		t.Helper()
		out, err := awslambda.NewHandler(rc.Handle).Invoke(t.Context(), payload)
		if err != nil {
			t.Fatal(err)
		}
		var resp events.LambdaFunctionURLResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := invoke(t, lambda.Receiver{}, payload); resp.StatusCode != http.StatusNotImplemented || !strings.Contains(resp.Body, "INFINITY_RAP_KEY") {
		t.Fatalf("no key: %+v", resp)
	}
	tokens := rap.Tokens{Key: []byte("0123456789abcdef0123456789abcdef")}
	sent := &recorder{}
	rc := lambda.Receiver{Handler: &rap.Handler{Tokens: tokens, Sender: sent}}
	if resp := invoke(t, rc, payload); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %+v", resp)
	}
	good := strings.ReplaceAll(string(payload), "tok_3f9a", tokens.Token("thread-alpha", "call_1"))
	if resp := invoke(t, rc, []byte(good)); resp.StatusCode != http.StatusOK {
		t.Fatalf("a genuine callback: %+v", resp)
	}
	sent.mu.Lock()
	defer sent.mu.Unlock()
	if len(sent.sent) != 1 || sent.sent[0].GroupID != "thread-alpha" || sent.sent[0].Content.ID != "call_1" || infinity.PartsText(sent.sent[0].Content.Parts) != "done" {
		t.Fatalf("sent %+v", sent.sent)
	}
}
