package httpclient

import (
	"net"
	"net/http"
	"time"
)

// Default limits of a Plain client. A tool server may run for minutes before
// it answers, so the header and overall limits are generous; the dial and TLS
// limits are short because a server that cannot be reached quickly is down.
const (
	DefaultDialTimeout           = 10 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 5 * time.Minute
	DefaultTimeout               = 10 * time.Minute
)

// PlainOption configures NewPlain.
type PlainOption func(*plainConfig)

type plainConfig struct {
	timeout       time.Duration
	headerTimeout time.Duration
}

// WithTimeout bounds each request as a whole, from dial to the end of the
// response body (DefaultTimeout if not given; zero means no limit beyond the
// request's context).
func WithTimeout(d time.Duration) PlainOption {
	return func(c *plainConfig) { c.timeout = d }
}

// WithResponseHeaderTimeout bounds the wait for the response headers once the
// request is written (DefaultResponseHeaderTimeout if not given; zero means
// no limit).
func WithResponseHeaderTimeout(d time.Duration) PlainOption {
	return func(c *plainConfig) { c.headerTimeout = d }
}

// NewPlain returns an HTTP client for tool servers with its own transport
// (proxy from the environment, HTTP/2 when offered, kept-alive connections)
// and bounded timeouts. The request's context still applies.
func NewPlain(opts ...PlainOption) *http.Client {
	cfg := plainConfig{timeout: DefaultTimeout, headerTimeout: DefaultResponseHeaderTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	dialer := &net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   DefaultTLSHandshakeTimeout,
		ResponseHeaderTimeout: cfg.headerTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: cfg.timeout}
}
