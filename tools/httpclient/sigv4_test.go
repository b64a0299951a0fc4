package httpclient_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/tools/httpclient"
)

var (
	staticCreds  = aws.Credentials{AccessKeyID: "AKIDSTATIC", SecretAccessKey: "static-secret"}
	sessionCreds = aws.Credentials{AccessKeyID: "ASIASESSION", SecretAccessKey: "session-secret", SessionToken: "session-token"}
)

func provider(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

// doerFunc adapts a function to infinity.HTTPClient; tests use it to tamper
// with requests after they are signed.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(req *http.Request) (*http.Response, error) { return f(req) }

func TestSigV4(t *testing.T) {
	now := time.Now().UTC()
	srv := newSigServer(t, &verifier{
		region: "eu-west-1", service: "lambda", now: time.Now, maxSkew: 5 * time.Minute,
		creds: map[string]aws.Credentials{staticCreds.AccessKeyID: staticCreds, sessionCreds.AccessKeyID: sessionCreds},
	})
	const jsonBody = `{"tool":"search","input":{"q":"go sigv4"}}`

	tests := []struct {
		name     string
		method   string
		target   string // path and query
		body     string
		stream   bool // body without GetBody, so the client must buffer it
		header   map[string]string
		creds    aws.Credentials
		region   string // client's region (default eu-west-1)
		service  string // client's service (default lambda)
		signedAt time.Time
		tamper   func(*http.Request)
		want     int
	}{
		{name: "post json", method: http.MethodPost, target: "/invoke", body: jsonBody,
			header: map[string]string{"Content-Type": "application/json"}, want: http.StatusOK},
		{name: "get without body", method: http.MethodGet, target: "/tools?name=search&v=2", want: http.StatusOK},
		{name: "session credentials post", method: http.MethodPost, target: "/invoke", body: jsonBody, creds: sessionCreds,
			header: map[string]string{"Content-Type": "application/json"}, want: http.StatusOK},
		{name: "session credentials get", method: http.MethodGet, target: "/tools", creds: sessionCreds, want: http.StatusOK},
		{name: "streamed body", method: http.MethodPost, target: "/invoke", body: jsonBody, stream: true, want: http.StatusOK},
		{name: "escaped path", method: http.MethodGet, target: "/a%20b/c?x=1%2B2", want: http.StatusOK},

		{name: "changed body", method: http.MethodPost, target: "/invoke", body: jsonBody, want: http.StatusUnauthorized,
			tamper: func(r *http.Request) {
				forged := strings.Replace(jsonBody, "go", "GO", 1)
				r.Body, r.GetBody, r.ContentLength = io.NopCloser(strings.NewReader(forged)), nil, int64(len(forged))
			}},
		{name: "changed body and its hash header", method: http.MethodPost, target: "/invoke", body: jsonBody,
			want: http.StatusUnauthorized, tamper: func(r *http.Request) {
				forged := strings.Replace(jsonBody, "go", "GO", 1)
				r.Body, r.GetBody, r.ContentLength = io.NopCloser(strings.NewReader(forged)), nil, int64(len(forged))
				sum := sha256.Sum256([]byte(forged))
				r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			}},
		{name: "changed path", method: http.MethodPost, target: "/invoke", body: jsonBody, want: http.StatusUnauthorized,
			tamper: func(r *http.Request) { r.URL.Path = "/admin" }},
		{name: "changed query", method: http.MethodGet, target: "/tools?name=search", want: http.StatusUnauthorized,
			tamper: func(r *http.Request) { r.URL.RawQuery = "name=delete" }},
		{name: "added query", method: http.MethodGet, target: "/tools", want: http.StatusUnauthorized,
			tamper: func(r *http.Request) { r.URL.RawQuery = "all=1" }},
		{name: "changed signed header", method: http.MethodPost, target: "/invoke", body: jsonBody,
			header: map[string]string{"Content-Type": "application/json"}, want: http.StatusUnauthorized,
			tamper: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }},
		{name: "changed custom header", method: http.MethodGet, target: "/tools",
			header: map[string]string{"X-Infinity-Thread": "t1"}, want: http.StatusUnauthorized,
			tamper: func(r *http.Request) { r.Header.Set("X-Infinity-Thread", "t2") }},
		{name: "changed security token", method: http.MethodGet, target: "/tools", creds: sessionCreds, want: http.StatusUnauthorized,
			tamper: func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "forged") }},
		{name: "dropped security token", method: http.MethodGet, target: "/tools", creds: sessionCreds, want: http.StatusUnauthorized,
			tamper: func(r *http.Request) { r.Header.Del("X-Amz-Security-Token") }},
		{name: "wrong region", method: http.MethodGet, target: "/tools", region: "us-east-1", want: http.StatusUnauthorized},
		{name: "wrong service", method: http.MethodGet, target: "/tools", service: "execute-api", want: http.StatusUnauthorized},
		{name: "stale date", method: http.MethodGet, target: "/tools", signedAt: now.Add(-time.Hour), want: http.StatusUnauthorized},
		{name: "future date", method: http.MethodGet, target: "/tools", signedAt: now.Add(time.Hour), want: http.StatusUnauthorized},
		{name: "changed date", method: http.MethodGet, target: "/tools", want: http.StatusUnauthorized,
			tamper: func(r *http.Request) {
				r.Header.Set("X-Amz-Date", time.Now().UTC().Add(2*time.Second).Format(amzDateFormat))
			}},
		{name: "date outside scope day", method: http.MethodGet, target: "/tools", want: http.StatusUnauthorized,
			tamper: func(r *http.Request) {
				r.Header.Set("X-Amz-Date", time.Now().UTC().AddDate(0, 0, 1).Format(amzDateFormat))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			creds := tc.creds
			if creds.AccessKeyID == "" {
				creds = staticCreds
			}
			region := tc.region
			if region == "" {
				region = "eu-west-1"
			}
			opts := []httpclient.SigV4Option{httpclient.WithClient(doerFunc(func(r *http.Request) (*http.Response, error) {
				if tc.tamper != nil {
					tc.tamper(r)
				}
				return srv.Client().Do(r)
			}))}
			if tc.service != "" {
				opts = append(opts, httpclient.WithService(tc.service))
			}
			if !tc.signedAt.IsZero() {
				opts = append(opts, httpclient.WithClock(clocktest.New(tc.signedAt)))
			}
			c, err := httpclient.NewSigV4(region, provider(creds), opts...)
			if err != nil {
				t.Fatal(err)
			}

			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.stream {
					body = io.NopCloser(body) // hides the type, so NewRequest sets no GetBody
				}
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.target, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tc.want)
			}
			if tc.want != http.StatusOK {
				t.Logf("rejected: %s", strings.TrimSpace(string(got)))
			}
			if tc.want == http.StatusOK && string(got) != tc.method+" "+tc.body {
				t.Errorf("server saw %q, want %q", got, tc.method+" "+tc.body)
			}
			if req.Header.Get("Authorization") != "" || req.Header.Get("X-Amz-Date") != "" {
				t.Error("Do changed the caller's request headers")
			}
		})
	}
}

func TestSigV4CredentialsError(t *testing.T) {
	srv := newSigServer(t, &verifier{region: "eu-west-1", service: "lambda", now: time.Now, maxSkew: time.Minute})
	boom := errors.New("imds unreachable")
	tests := []struct {
		name string
		p    aws.CredentialsProvider
		want error
	}{
		{"provider error", aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, boom
		}), boom},
		{"keyless credentials", provider(aws.Credentials{}), httpclient.ErrNoCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := httpclient.NewSigV4("eu-west-1", tc.p, httpclient.WithClient(srv.Client()))
			if err != nil {
				t.Fatal(err)
			}
			body := &closeTracker{Reader: strings.NewReader(`{"a":1}`)}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/invoke", body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("Do succeeded without credentials")
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if n := srv.requests.Load(); n != 0 {
				t.Errorf("server got %d requests, want 0", n)
			}
			if !body.closed.Load() {
				t.Error("request body not closed")
			}
		})
	}
}

// TestSigV4CachesCredentials: the provider is asked once, not per request,
// because NewSigV4 wraps it in an aws.CredentialsCache.
func TestSigV4CachesCredentials(t *testing.T) {
	srv := newSigServer(t, &verifier{region: "eu-west-1", service: "lambda", now: time.Now, maxSkew: time.Minute,
		creds: map[string]aws.Credentials{sessionCreds.AccessKeyID: sessionCreds}})
	var calls atomic.Int64
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		calls.Add(1)
		return sessionCreds, nil
	})
	c, err := httpclient.NewSigV4("eu-west-1", p, httpclient.WithClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/tools", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("provider called %d times, want 1", n)
	}
}

func TestNewSigV4Invalid(t *testing.T) {
	tests := []struct {
		name   string
		region string
		p      aws.CredentialsProvider
		opts   []httpclient.SigV4Option
	}{
		{"no region", "", provider(staticCreds), nil},
		{"no provider", "eu-west-1", nil, nil},
		{"empty service", "eu-west-1", provider(staticCreds), []httpclient.SigV4Option{httpclient.WithService("")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := httpclient.NewSigV4(tc.region, tc.p, tc.opts...); !errors.Is(err, infinity.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }
