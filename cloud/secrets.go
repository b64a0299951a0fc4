package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/awsendpoint"
	"github.com/infinity-runtime/infinity/internal/awsjson"
	"github.com/infinity-runtime/infinity/tools/httpclient"
)

// SecretsManager reads secrets with Secrets Manager's GetSecretValue, over
// its JSON protocol signed with SigV4 (internal/awsjson): the one call the
// functions make, so the bootstrap carries these few lines rather than the
// SDK's client (the bootstrap has a size budget).
type SecretsManager struct {
	client   infinity.HTTPClient
	endpoint string
}

// NewSecretsManager returns a reader for cfg's region and credentials.
// endpoint overrides the service's address; empty means what cfg
// configures (AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL), else the
// region's public endpoint.
func NewSecretsManager(cfg aws.Config, endpoint string) (*SecretsManager, error) {
	return awsClient(cfg, "secretsmanager", "Secrets Manager", endpoint,
		func(c infinity.HTTPClient, endpoint string) (*SecretsManager, error) {
			return &SecretsManager{client: c, endpoint: strings.TrimRight(endpoint, "/") + "/"}, nil
		})
}

// SecretString returns the secret's current string value. A secret that
// does not exist wraps infinity.ErrNotFound; the service's other refusals
// (access denied, a binary secret) are errors naming its error code.
func (s *SecretsManager) SecretString(ctx context.Context, arn string) (string, error) {
	body, err := json.Marshal(map[string]string{"SecretId": arn})
	if err != nil {
		return "", fmt.Errorf("get secret %s: %w", arn, err)
	}
	raw, err := awsjson.Do(ctx, s.client, awsjson.Request{Method: http.MethodPost, URL: s.endpoint, Body: body,
		Headers: map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.GetSecretValue"}})
	var apiErr *awsjson.Error
	if errors.As(err, &apiErr) && apiErr.Code == "ResourceNotFoundException" {
		return "", fmt.Errorf("get secret %s: %s: %w", arn, apiErr.Message, infinity.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get secret %s: %w", arn, err)
	}
	var out struct{ SecretString *string }
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("get secret %s: answer: %w", arn, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("get secret %s: it has no string value (a binary secret?): %w", arn, infinity.ErrInvalid)
	}
	return *out.SecretString, nil
}

// awsClient makes the client of a service called without the SDK's
// client: requests signed for service (its signing name and endpoint
// prefix) with cfg's region and credentials, sent through cfg's HTTP
// client if it has one, to endpoint, or where cfg configures the service
// whose SDK id is sdkID.
func awsClient[C any](cfg aws.Config, service, sdkID, endpoint string, mk func(infinity.HTTPClient, string) (C, error)) (C, error) {
	var zero C
	opts := []httpclient.SigV4Option{httpclient.WithService(service)}
	if cfg.HTTPClient != nil {
		opts = append(opts, httpclient.WithClient(cfg.HTTPClient))
	}
	signer, err := httpclient.NewSigV4(cfg.Region, cfg.Credentials, opts...)
	if err != nil {
		return zero, fmt.Errorf("cloud: %s: %w", service, err)
	}
	if endpoint == "" {
		u, err := awsendpoint.Resolve(&cfg, sdkID, service)
		if err != nil {
			return zero, fmt.Errorf("cloud: %s: %w", service, err)
		}
		endpoint = u.String()
	}
	c, err := mk(signer, endpoint)
	if err != nil {
		return zero, fmt.Errorf("cloud: %s: %w", service, err)
	}
	return c, nil
}
