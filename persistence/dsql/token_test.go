package dsql

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/jackc/pgx/v5"
)

const testEndpoint = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// countingCreds counts Retrieve calls (each new token signs once).
type countingCreds struct {
	aws.CredentialsProvider
	n atomic.Int32
}

func (c *countingCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c.n.Add(1)
	return c.CredentialsProvider.Retrieve(ctx)
}

func parseToken(t *testing.T, tok string) url.Values {
	t.Helper()
	host, rawQuery, ok := strings.Cut(tok, "/?")
	if !ok || host != testEndpoint || strings.Contains(tok, "://") {
		t.Fatalf("token %q is not ENDPOINT/?QUERY without a scheme", tok)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// sigV4 recomputes a presigned GET / signature by the SigV4 recipe.
func sigV4(q url.Values, secret, region string, at time.Time) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "X-Amz-Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(q.Get(k)))
	}
	canonical := strings.Join([]string{"GET", "/", strings.Join(parts, "&"), "host:" + testEndpoint + "\n", "host", emptyPayloadHash}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	day := at.Format("20060102")
	toSign := "AWS4-HMAC-SHA256\n" + at.Format("20060102T150405Z") + "\n" + day + "/" + region + "/dsql/aws4_request\n" + hex.EncodeToString(sum[:])
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4"+secret), day), region), "dsql"), "aws4_request")
	return hex.EncodeToString(mac(key, toSign))
}

func TestToken(t *testing.T) {
	for _, tc := range []struct {
		admin   bool
		session string
		action  string
	}{{false, "", "DbConnect"}, {true, "", "DbConnectAdmin"}, {false, "SESSION", "DbConnect"}} {
		g := &TokenGenerator{Endpoint: testEndpoint, Region: "us-east-1", Admin: tc.admin, Now: func() time.Time { return t0 },
			Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "SECRET", tc.session)}
		tok, err := g.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		again, _ := g.Token(t.Context())
		if again != tok {
			t.Errorf("tokens at one time differ:\n%s\n%s", tok, again)
		}
		q := parseToken(t, tok)
		for k, want := range map[string]string{
			"Action":              tc.action,
			"X-Amz-Algorithm":     "AWS4-HMAC-SHA256",
			"X-Amz-Credential":    "AKIDEXAMPLE/20260102/us-east-1/dsql/aws4_request",
			"X-Amz-Date":          "20260102T030405Z",
			"X-Amz-Expires":       "900",
			"X-Amz-SignedHeaders": "host",
		} {
			if got := q.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", tc.action, k, got, want)
			}
		}
		if got := q.Get("X-Amz-Security-Token"); got != tc.session {
			t.Errorf("X-Amz-Security-Token = %q, want %q", got, tc.session)
		}
		if got, want := q.Get("X-Amz-Signature"), sigV4(q, "SECRET", "us-east-1", t0); got != want {
			t.Errorf("%s: signature %s, recomputed %s", tc.action, got, want)
		}
	}
}

func TestTokenRefresh(t *testing.T) {
	now := t0
	creds := &countingCreds{CredentialsProvider: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	g := &TokenGenerator{Endpoint: testEndpoint, Region: "eu-west-1", Credentials: creds, Now: func() time.Time { return now }}
	cfg := &pgx.ConnConfig{}
	password := func() string {
		t.Helper()
		if err := g.BeforeConnect(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		return cfg.Password
	}
	first := password()
	for _, d := range []time.Duration{time.Second, 5 * time.Minute, 11*time.Minute + 59*time.Second} {
		now = t0.Add(d)
		if password() != first {
			t.Fatalf("token renewed at +%v, 15 min token", d)
		}
	}
	if n := creds.n.Load(); n != 1 {
		t.Errorf("%d tokens signed for 4 connections, want 1", n)
	}
	now = t0.Add(12 * time.Minute) // within Expiry/5 of expiry
	second := password()
	if second == first {
		t.Fatal("token not renewed 3 minutes before expiry")
	}
	if got := parseToken(t, second).Get("X-Amz-Date"); got != "20260102T031605Z" {
		t.Errorf("renewed token dated %s", got)
	}

	// Credentials that expire first bound the token's life.
	exp := &countingCreds{CredentialsProvider: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "A", SecretAccessKey: "S", CanExpire: true, Expires: t0.Add(5 * time.Minute)}, nil
	})}
	now = t0
	g = &TokenGenerator{Endpoint: testEndpoint, Region: "eu-west-1", Credentials: exp, Now: func() time.Time { return now }}
	password()
	now = t0.Add(2*time.Minute + time.Second)
	password()
	if n := exp.n.Load(); n != 2 {
		t.Errorf("%d tokens signed, want 2 (credentials expire at +5 min)", n)
	}
}

func TestConnString(t *testing.T) {
	cfg, err := pgx.ParseConfig(ConnString(testEndpoint, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSConfig == nil || cfg.TLSConfig.InsecureSkipVerify || cfg.TLSConfig.ServerName != testEndpoint || len(cfg.Fallbacks) != 0 {
		t.Errorf("TLS not verify-full: %+v, fallbacks %v", cfg.TLSConfig, cfg.Fallbacks)
	}
	if cfg.Host != testEndpoint || cfg.Port != 5432 || cfg.Database != "postgres" || cfg.User != "admin" {
		t.Errorf("config %s:%d/%s as %s", cfg.Host, cfg.Port, cfg.Database, cfg.User)
	}
}
