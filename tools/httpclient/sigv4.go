package httpclient

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/infinity-runtime/infinity"
)

// DefaultService is the SigV4 signing name of Lambda Function URLs.
const DefaultService = "lambda"

// ErrNoCredentials: the credentials provider returned credentials without an
// access key (anonymous ones, say). The request is not sent unsigned.
var ErrNoCredentials = errors.New("no aws credentials")

var _ infinity.HTTPClient = (*SigV4)(nil)

// SigV4 signs each request with AWS Signature Version 4 and sends it through
// an inner client. It is safe for concurrent use.
type SigV4 struct {
	client  infinity.HTTPClient
	signer  *v4.Signer
	creds   aws.CredentialsProvider
	region  string
	service string
	clock   infinity.Clock
}

// SigV4Option configures NewSigV4.
type SigV4Option func(*SigV4)

// WithService sets the signing name (DefaultService if not given).
func WithService(service string) SigV4Option {
	return func(c *SigV4) { c.service = service }
}

// WithClient sets the client that sends the signed requests (NewPlain() if
// not given).
func WithClient(client infinity.HTTPClient) SigV4Option {
	return func(c *SigV4) { c.client = client }
}

// WithClock sets the clock that dates the signatures (the system clock if not
// given).
func WithClock(clock infinity.Clock) SigV4Option {
	return func(c *SigV4) { c.clock = clock }
}

// NewSigV4 returns a client that signs for region with the credentials creds
// yields, retrieved for every request. A provider that is not already an
// *aws.CredentialsCache is wrapped in one, so that it is asked again only
// when its credentials expire. It returns infinity.ErrInvalid without a
// region, a provider, a service or a client.
func NewSigV4(region string, creds aws.CredentialsProvider, opts ...SigV4Option) (*SigV4, error) {
	c := &SigV4{
		signer:  v4.NewSigner(),
		creds:   creds,
		region:  region,
		service: DefaultService,
		clock:   infinity.SystemClock{},
	}
	for _, o := range opts {
		o(c)
	}
	switch {
	case c.region == "":
		return nil, fmt.Errorf("new sigv4 client: no region: %w", infinity.ErrInvalid)
	case c.creds == nil:
		return nil, fmt.Errorf("new sigv4 client: no credentials provider: %w", infinity.ErrInvalid)
	case c.service == "":
		return nil, fmt.Errorf("new sigv4 client: no service: %w", infinity.ErrInvalid)
	case c.clock == nil:
		return nil, fmt.Errorf("new sigv4 client: no clock: %w", infinity.ErrInvalid)
	}
	if c.client == nil {
		c.client = NewPlain()
	}
	if _, ok := c.creds.(*aws.CredentialsCache); !ok {
		c.creds = aws.NewCredentialsCache(c.creds)
	}
	return c, nil
}

// Do signs a copy of req and sends it; req itself is not changed. As with
// http.Client.Do, the request body is closed even on error. Failing to read
// the body, retrieve credentials (ErrNoCredentials for keyless ones) or sign
// is an error and nothing is sent; errors from sending come from the inner
// client unchanged.
func (c *SigV4) Do(req *http.Request) (*http.Response, error) {
	out, err := c.sign(req)
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // nothing will send it; Do owns it
		}
		return nil, fmt.Errorf("sigv4 %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return c.client.Do(out)
}

func (c *SigV4) sign(req *http.Request) (*http.Request, error) {
	ctx := req.Context()
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials: %w", err)
	}
	if !creds.HasKeys() {
		return nil, ErrNoCredentials
	}
	out := req.Clone(ctx)
	hash, err := payloadHash(out)
	if err != nil {
		return nil, err
	}
	// Signed too, for proxies (CloudFront) that cannot hash the body.
	out.Header.Set("X-Amz-Content-Sha256", hash)
	if err := c.signer.SignHTTP(ctx, creds, out, hash, c.service, c.region, c.clock.Now()); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return out, nil
}
