package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Receiver is the handler of the RAP receiver function: a Lambda Function
// URL that tool servers call back. It turns the Function URL event into an
// HTTP request for Handler (tools/rap's callback handler, which verifies
// the per-call token in the URL and puts the message on the thread's SQS
// message group) and the handler's answer back into the response. Without
// a Handler (no INFINITY_RAP_KEY configured) every request is answered 501.
type Receiver struct {
	Handler http.Handler
}

// Handle answers a Function URL request.
func (rc Receiver) Handle(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	if rc.Handler == nil {
		body, _ := json.Marshal(map[string]string{
			"error":   "not_implemented",
			"message": "this receiver has no RAP key configured (INFINITY_RAP_KEY), so it accepts no callbacks",
		})
		return events.LambdaFunctionURLResponse{StatusCode: http.StatusNotImplemented,
			Headers: map[string]string{"Content-Type": "application/json"}, Body: string(body)}, nil
	}
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return events.LambdaFunctionURLResponse{StatusCode: http.StatusBadRequest, Body: `{"error":"body is not base64"}`}, nil
		}
		body = b
	}
	target := ev.RawPath
	if target == "" {
		target = "/"
	}
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return events.LambdaFunctionURLResponse{StatusCode: http.StatusBadRequest, Body: `{"error":"bad request line"}`}, nil
	}
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	req.Host = ev.RequestContext.DomainName
	req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	rc.Handler.ServeHTTP(rec, req)
	resp := events.LambdaFunctionURLResponse{StatusCode: rec.code, Body: rec.body.String(), Headers: map[string]string{}}
	for k, v := range rec.header {
		resp.Headers[k] = strings.Join(v, ", ")
	}
	return resp, nil
}

// recorder is the http.ResponseWriter a handler writes a buffered Function
// URL response into.
type recorder struct {
	header http.Header
	body   bytes.Buffer
	code   int
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}
