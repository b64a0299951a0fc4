package dsql

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/jackc/pgx/v5"
)

// emptyPayloadHash is the SHA-256 of an empty body, which a DbConnect
// request has.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// DefaultTokenExpiry is how long a token is valid unless told otherwise.
const DefaultTokenExpiry = 15 * time.Minute

// TokenGenerator makes the IAM authentication tokens Aurora DSQL takes as
// passwords: a SigV4-presigned https://ENDPOINT/?Action=DbConnect URL
// (DbConnectAdmin for the admin role), without its scheme, for service
// "dsql". Password caches the token until Refresh before it expires.
type TokenGenerator struct {
	Endpoint    string // the cluster endpoint, a host name
	Region      string
	Credentials aws.CredentialsProvider
	Admin       bool             // DbConnectAdmin instead of DbConnect
	Expiry      time.Duration    // token lifetime; DefaultTokenExpiry if zero
	Refresh     time.Duration    // renew this long before expiry; Expiry/5 if zero
	Now         func() time.Time // the clock; time.Now if nil

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

func (g *TokenGenerator) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *TokenGenerator) expiry() time.Duration {
	if g.Expiry > 0 {
		return g.Expiry
	}
	return DefaultTokenExpiry
}

// Token makes a fresh token signed at the generator's current time.
func (g *TokenGenerator) Token(ctx context.Context) (string, error) {
	tok, _, err := g.sign(ctx, g.now())
	return tok, err
}

// sign presigns the connect request at t and returns the token and when it
// stops being valid (the earlier of its expiry and the credentials').
func (g *TokenGenerator) sign(ctx context.Context, t time.Time) (string, time.Time, error) {
	if g.Credentials == nil || g.Endpoint == "" || g.Region == "" {
		return "", time.Time{}, fmt.Errorf("dsql token: endpoint %q, region %q and credentials are required", g.Endpoint, g.Region)
	}
	creds, err := g.Credentials.Retrieve(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("dsql token for %s: credentials: %w", g.Endpoint, err)
	}
	action := "DbConnect"
	if g.Admin {
		action = "DbConnectAdmin"
	}
	exp := g.expiry()
	q := url.Values{"Action": {action}, "X-Amz-Expires": {strconv.Itoa(int(exp / time.Second))}}
	u := url.URL{Scheme: "https", Host: g.Endpoint, Path: "/", RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("dsql token for %s: %w", g.Endpoint, err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptyPayloadHash, "dsql", g.Region, t)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("dsql token for %s: presign: %w", g.Endpoint, err)
	}
	until := t.Add(exp)
	if creds.CanExpire && creds.Expires.Before(until) {
		until = creds.Expires
	}
	return strings.TrimPrefix(signed, "https://"), until, nil
}

// Password returns the cached token, making a new one when none is cached
// or the cached one is within Refresh of its expiry.
func (g *TokenGenerator) Password(ctx context.Context) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.token != "" && now.Before(g.renewAt) {
		return g.token, nil
	}
	tok, until, err := g.sign(ctx, now)
	if err != nil {
		return "", err
	}
	refresh := g.Refresh
	if refresh <= 0 {
		refresh = g.expiry() / 5
	}
	g.token, g.renewAt = tok, until.Add(-refresh)
	return tok, nil
}

// BeforeConnect sets a valid token as the connection's password; assign it
// to pgxpool.Config.BeforeConnect.
func (g *TokenGenerator) BeforeConnect(ctx context.Context, cfg *pgx.ConnConfig) error {
	tok, err := g.Password(ctx)
	if err != nil {
		return err
	}
	cfg.Password = tok
	return nil
}

// ConnString returns the connection string of a DSQL cluster: database
// postgres on port 5432 over TLS with the server's certificate verified
// (sslmode=verify-full). The password comes from BeforeConnect.
func ConnString(endpoint, user string) string {
	u := url.URL{Scheme: "postgres", User: url.User(user), Host: endpoint + ":5432", Path: "/postgres",
		RawQuery: "sslmode=verify-full"}
	return u.String()
}
