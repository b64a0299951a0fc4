package httpclient_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/tools/httpclient"
)

func TestPlainTimeouts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // slower than any limit below, but ends when the client gives up
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()

	tests := []struct {
		name string
		opts []httpclient.PlainOption
	}{
		{"per-request timeout", []httpclient.PlainOption{httpclient.WithTimeout(100 * time.Millisecond)}},
		{"response header timeout", []httpclient.PlainOption{httpclient.WithTimeout(0), httpclient.WithResponseHeaderTimeout(100 * time.Millisecond)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := httpclient.NewPlain(tc.opts...)
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			start := time.Now()
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("slow server answered in time")
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("err = %v, want a timeout", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("gave up after %s", d)
			}
		})
	}
}

func TestPlainOwnTransport(t *testing.T) {
	c := httpclient.NewPlain()
	if c == http.DefaultClient || c.Transport == http.DefaultTransport || c.Transport == nil {
		t.Error("NewPlain shares the default client or transport")
	}
	if c.Timeout != httpclient.DefaultTimeout {
		t.Errorf("Timeout = %s, want %s", c.Timeout, httpclient.DefaultTimeout)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
