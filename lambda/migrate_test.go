package lambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/infinity-runtime/infinity/lambda"
)

// cfnResponse is what CloudFormation receives at the response URL.
type cfnResponse struct {
	Status, Reason, PhysicalResourceId, RequestId, LogicalResourceId, StackId string
}

// invokeCustomResource sends the real event (with its response URL
// pointed at a local server) through aws-lambda-go's JSON path and returns
// the response CloudFormation got.
func invokeCustomResource(t *testing.T, requestType string, migrate func(context.Context) error, left time.Duration) cfnResponse {
	t.Helper()
	got := make(chan cfnResponse, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resp cfnResponse
		if r.Method != http.MethodPut || json.NewDecoder(r.Body).Decode(&resp) != nil {
			w.WriteHeader(400)
			return
		}
		got <- resp
	}))
	defer srv.Close()
	raw, err := os.ReadFile("testdata/cfn-create.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev["ResponseURL"], ev["RequestType"] = srv.URL+"/response", requestType
	if requestType != "Create" {
		ev["PhysicalResourceId"] = lambda.SchemaResourceID
	}
	payload, _ := json.Marshal(ev)
	ctx, cancel := context.WithTimeout(t.Context(), left)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "req-cfn"})
	h := awslambda.NewHandler(lambda.Migrator(migrate, slog.New(slog.NewTextHandler(io.Discard, nil))))
	if _, err := h.Invoke(ctx, payload); err != nil {
		t.Fatalf("invoke: %v", err)
	}
	select {
	case r := <-got:
		return r
	default:
		t.Fatal("CloudFormation got no response")
		return cfnResponse{}
	}
}

func TestMigratorAnswersCloudFormation(t *testing.T) {
	var runs atomic.Int32
	ok := func(context.Context) error { runs.Add(1); return nil }
	for _, rt := range []string{"Create", "Update"} {
		r := invokeCustomResource(t, rt, ok, 30*time.Second)
		if r.Status != "SUCCESS" || r.PhysicalResourceId != lambda.SchemaResourceID || r.RequestId != "8c3e2a4b-7f21-4f0e-9a7d-2b8e4c1d9f00" ||
			r.LogicalResourceId != "AgentSchema0F1E2D3C" || !strings.HasPrefix(r.StackId, "arn:aws:cloudformation:") {
			t.Errorf("%s: %+v", rt, r)
		}
	}
	// Delete leaves the database alone.
	if r := invokeCustomResource(t, "Delete", ok, 30*time.Second); r.Status != "SUCCESS" || r.PhysicalResourceId != lambda.SchemaResourceID {
		t.Errorf("Delete: %+v", r)
	}
	if runs.Load() != 2 {
		t.Errorf("migrate ran %d times, want 2 (create and update)", runs.Load())
	}
	// A failure is reported, with why.
	r := invokeCustomResource(t, "Create", func(context.Context) error { return errors.New("database unreachable") }, 30*time.Second)
	if r.Status != "FAILED" || !strings.Contains(r.Reason, "database unreachable") || r.PhysicalResourceId != lambda.SchemaResourceID {
		t.Errorf("failure: %+v", r)
	}
	// A migration that hangs is cut short in time to answer before the
	// invocation's deadline: it gets a deadline a margin earlier.
	var given time.Time
	invoked := time.Now()
	r = invokeCustomResource(t, "Create", func(ctx context.Context) error {
		given, _ = ctx.Deadline()
		return ctx.Err()
	}, time.Minute)
	if r.Status != "SUCCESS" || given.IsZero() || !given.Before(invoked.Add(time.Minute-4*time.Second)) {
		t.Errorf("the migration's deadline %v is not a margin before the invocation's (%v): %+v", given, invoked.Add(time.Minute), r)
	}
}
