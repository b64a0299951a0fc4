// Package chain builds a Bedrock provider from the default AWS
// configuration chain (config.LoadDefaultConfig): credentials from the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), the shared config and credentials files
// (AWS_PROFILE), SSO, web identity, or container and instance roles; the
// region from AWS_REGION, the profile, or config.WithRegion; the endpoint
// from AWS_ENDPOINT_URL_BEDROCK_RUNTIME, AWS_ENDPOINT_URL or a profile's
// endpoint_url; the number of attempts from AWS_MAX_ATTEMPTS, the
// profile's max_attempts or config.WithRetryMaxAttempts. It is apart from
// package bedrock so that a program with an AWS configuration of its own
// (the Lambda bootstrap) does not link the config package and its SSO,
// STS and sign-in clients.
package chain

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/models/bedrock"
)

// FromConfig returns a provider serving models with the configuration
// config.LoadDefaultConfig loads with optFns. The region must resolve (an
// error wrapping infinity.ErrInvalid otherwise).
func FromConfig(ctx context.Context, models []infinity.ModelInfo, optFns ...func(*config.LoadOptions) error) (*bedrock.Provider, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx, optFns...)
	if err != nil {
		return nil, fmt.Errorf("bedrock: loading the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("bedrock: no AWS region is configured (set AWS_REGION, a profile region, or pass config.WithRegion): %w", infinity.ErrInvalid)
	}
	return bedrock.New(bedrock.Config{AWS: awsCfg, Models: models})
}
