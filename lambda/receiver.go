package lambda

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
)

// Receiver is the handler of the RAP receiver function (a Lambda Function
// URL that tool servers call back). RAP callbacks need the runtime's RAP
// role (tools/rap: per-call tokens, matching results to pending calls),
// which is not built yet, so every request is answered 501 with a JSON
// error that says so, rather than accepted and lost.
type Receiver struct{}

// Handle answers a Function URL request.
func (Receiver) Handle(_ context.Context, _ events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	body, _ := json.Marshal(map[string]string{
		"error":   "not_implemented",
		"message": "RAP callbacks are not accepted yet: the runtime's RAP role (tools/rap) is not built",
	})
	return events.LambdaFunctionURLResponse{
		StatusCode: http.StatusNotImplemented,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(body),
	}, nil
}
