package httpclient_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const amzDateFormat = "20060102T150405Z"

// verifier checks SigV4 signatures the way a Lambda Function URL does: it
// rebuilds the request as received and signs it again with the same library.
type verifier struct {
	region, service string
	creds           map[string]aws.Credentials // by access key id
	now             func() time.Time
	maxSkew         time.Duration
}

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKey, date, region, service string
	signedHeaders, signature         string
}

func parseAuthorization(h string) (authorization, error) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return authorization{}, errors.New("not AWS4-HMAC-SHA256")
	}
	var a authorization
	var scope string
	for _, part := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "Credential":
			scope = v
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	f := strings.Split(scope, "/")
	if len(f) != 5 || f[4] != "aws4_request" || a.signedHeaders == "" || a.signature == "" {
		return authorization{}, fmt.Errorf("malformed authorization %q", h)
	}
	a.accessKey, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
	return a, nil
}

func (v *verifier) verify(r *http.Request, body []byte) error {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if a.region != v.region || a.service != v.service {
		return fmt.Errorf("scope %s/%s, want %s/%s", a.region, a.service, v.region, v.service)
	}
	creds, ok := v.creds[a.accessKey]
	if !ok {
		return fmt.Errorf("unknown access key %q", a.accessKey)
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != creds.SessionToken {
		return fmt.Errorf("security token %q, want %q", got, creds.SessionToken)
	}
	signed, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("x-amz-date: %w", err)
	}
	if signed.Format("20060102") != a.date {
		return fmt.Errorf("x-amz-date %s outside scope date %s", signed, a.date)
	}
	if skew := v.now().Sub(signed); skew > v.maxSkew || skew < -v.maxSkew {
		return fmt.Errorf("signed at %s, %s from now", signed, skew)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if got := r.Header.Get("X-Amz-Content-Sha256"); got != "" && got != hash {
		return fmt.Errorf("x-amz-content-sha256 %s, body hashes to %s", got, hash)
	}

	re, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return err
	}
	re.ContentLength = r.ContentLength
	for _, name := range strings.Split(a.signedHeaders, ";") {
		if name == "host" || name == "content-length" {
			continue
		}
		re.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
	}
	err = v4.NewSigner().SignHTTP(context.Background(), creds, re, hash, v.service, v.region, signed)
	if err != nil {
		return fmt.Errorf("re-sign: %w", err)
	}
	want, err := parseAuthorization(re.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if want.signedHeaders != a.signedHeaders {
		return fmt.Errorf("signed headers %q, want %q", a.signedHeaders, want.signedHeaders)
	}
	if !hmac.Equal([]byte(want.signature), []byte(a.signature)) {
		return errors.New("signature mismatch")
	}
	return nil
}

// sigServer is an httptest server that answers 401 to requests that fail
// verification and otherwise echoes the method and body.
type sigServer struct {
	*httptest.Server
	v        *verifier
	requests atomic.Int64
}

func newSigServer(t *testing.T, v *verifier) *sigServer {
	t.Helper()
	s := &sigServer{v: v}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.v.verify(r, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s %s", r.Method, body)
	}))
	t.Cleanup(s.Close)
	return s
}
