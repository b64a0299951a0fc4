package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/infinity-runtime/infinity/internal/awsendpoint"
)

// awsConfig takes the region, credentials and endpoint settings from the
// environment, where Lambda puts the function role's credentials
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). The SDK's
// config package, with its shared-file and SSO providers, is left out: it
// adds about 0.4 MB (the bootstrap has a size budget) that a function never
// uses. What of its environment settings a function can use is read here,
// as the SDK documents them: AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
// (VPC endpoints, emulators), AWS_IGNORE_CONFIGURED_ENDPOINT_URLS,
// AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT (the calls made
// without an SDK client resolve their endpoints with
// internal/awsendpoint, as the SDK's clients do). The test compares the
// clients this makes with those config.LoadDefaultConfig makes.
func awsConfig(getenv func(string) string) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	key, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		return aws.Config{}, fmt.Errorf("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: required (Lambda sets them from the function's role)")
	}
	src, err := readEndpointEnv(getenv)
	if err != nil {
		return aws.Config{}, err
	}
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "environment"}
	cfg := aws.Config{
		Region: region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		ConfigSources: []any{src},
	}
	if v := getenv("AWS_ENDPOINT_URL"); v != "" && !src.ignore {
		cfg.BaseEndpoint = aws.String(v)
	}
	return cfg, nil
}

// endpointEnv is the environment's endpoint settings, in the shape the
// SDK's service clients look for among aws.Config.ConfigSources.
type endpointEnv struct {
	getenv    func(string) string
	ignore    bool
	ignoreSet bool
	fips      aws.FIPSEndpointState
	dualStack aws.DualStackEndpointState
}

func readEndpointEnv(getenv func(string) string) (endpointEnv, error) {
	e := endpointEnv{getenv: getenv}
	flag := func(name string) (value, set bool, err error) {
		switch v := getenv(name); {
		case v == "":
			return false, false, nil
		case strings.EqualFold(v, "true"):
			return true, true, nil
		case strings.EqualFold(v, "false"):
			return false, true, nil
		default:
			return false, false, fmt.Errorf("%s=%s: want true or false", name, v)
		}
	}
	var err error
	if e.ignore, e.ignoreSet, err = flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"); err != nil {
		return e, err
	}
	v, set, err := flag("AWS_USE_FIPS_ENDPOINT")
	if err != nil {
		return e, err
	}
	if set {
		e.fips = aws.FIPSEndpointStateDisabled
		if v {
			e.fips = aws.FIPSEndpointStateEnabled
		}
	}
	if v, set, err = flag("AWS_USE_DUALSTACK_ENDPOINT"); err != nil {
		return e, err
	}
	if set {
		e.dualStack = aws.DualStackEndpointStateDisabled
		if v {
			e.dualStack = aws.DualStackEndpointStateEnabled
		}
	}
	return e, nil
}

// GetServiceBaseEndpoint reads AWS_ENDPOINT_URL_<SDK ID>, the service's SDK
// id in capitals with spaces as underscores (SQS, DYNAMODB, SCHEDULER,
// BEDROCK_RUNTIME, SECRETS_MANAGER).
func (e endpointEnv) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	v := e.getenv(awsendpoint.EnvName(sdkID))
	return v, v != "", nil
}

// GetIgnoreConfiguredEndpoints reads AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
func (e endpointEnv) GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error) {
	return e.ignore, e.ignoreSet, nil
}

// GetUseFIPSEndpoint reads AWS_USE_FIPS_ENDPOINT.
func (e endpointEnv) GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error) {
	return e.fips, e.fips != aws.FIPSEndpointStateUnset, nil
}

// GetUseDualStackEndpoint reads AWS_USE_DUALSTACK_ENDPOINT.
func (e endpointEnv) GetUseDualStackEndpoint(context.Context) (aws.DualStackEndpointState, bool, error) {
	return e.dualStack, e.dualStack != aws.DualStackEndpointStateUnset, nil
}
