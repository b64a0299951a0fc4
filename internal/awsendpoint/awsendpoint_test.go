package awsendpoint

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/awstest"
)

// source is a configuration source as the SDK's config package makes
// them (AWS_ENDPOINT_URL_<SERVICE>, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS,
// AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT).
type source struct {
	service map[string]string // by SDK id
	ignore  *bool
	fips    aws.FIPSEndpointState
	dual    aws.DualStackEndpointState
}

func (s source) GetServiceBaseEndpoint(_ context.Context, id string) (string, bool, error) {
	v, ok := s.service[id]
	return v, ok, nil
}

func (s source) GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error) {
	if s.ignore == nil {
		return false, false, nil
	}
	return *s.ignore, true, nil
}

func (s source) GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error) {
	return s.fips, s.fips != aws.FIPSEndpointStateUnset, nil
}

func (s source) GetUseDualStackEndpoint(context.Context) (aws.DualStackEndpointState, bool, error) {
	return s.dual, s.dual != aws.DualStackEndpointStateUnset, nil
}

// The endpoint is resolved as the SDK's client resolves it (the expected
// URLs are those of its endpoint rules for Bedrock Runtime).
func TestResolve(t *testing.T) {
	awstest.Isolate(t)
	yes := true
	own := map[string]string{"Bedrock Runtime": "http://127.0.0.1:9000", "SQS": "http://127.0.0.1:1"}
	for name, tc := range map[string]struct {
		region string
		base   string
		src    source
		want   string // empty: invalid
	}{
		"regional":              {region: "us-east-1", want: "https://bedrock-runtime.us-east-1.amazonaws.com"},
		"fips":                  {region: "us-west-2", src: source{fips: aws.FIPSEndpointStateEnabled}, want: "https://bedrock-runtime-fips.us-west-2.amazonaws.com"},
		"fips off":              {region: "us-west-2", src: source{fips: aws.FIPSEndpointStateDisabled}, want: "https://bedrock-runtime.us-west-2.amazonaws.com"},
		"dual-stack":            {region: "eu-west-3", src: source{dual: aws.DualStackEndpointStateEnabled}, want: "https://bedrock-runtime.eu-west-3.api.aws"},
		"fips and dual-stack":   {region: "us-gov-west-1", src: source{fips: aws.FIPSEndpointStateEnabled, dual: aws.DualStackEndpointStateEnabled}, want: "https://bedrock-runtime-fips.us-gov-west-1.api.aws"},
		"china":                 {region: "cn-north-1", want: "https://bedrock-runtime.cn-north-1.amazonaws.com.cn"},
		"china dual-stack":      {region: "cn-north-1", src: source{dual: aws.DualStackEndpointStateEnabled}, want: "https://bedrock-runtime.cn-north-1.api.amazonwebservices.com.cn"},
		"iso":                   {region: "us-iso-east-1", want: "https://bedrock-runtime.us-iso-east-1.c2s.ic.gov"},
		"base endpoint":         {region: "us-east-1", base: "http://127.0.0.1:4566", want: "http://127.0.0.1:4566"},
		"service endpoint":      {region: "us-east-1", base: "http://127.0.0.1:4566", src: source{service: own}, want: "http://127.0.0.1:9000"},
		"other service only":    {region: "us-east-1", src: source{service: map[string]string{"SQS": "http://127.0.0.1:1"}}, want: "https://bedrock-runtime.us-east-1.amazonaws.com"},
		"ignored":               {region: "us-east-1", base: "http://127.0.0.1:4566", src: source{service: own, ignore: &yes}, want: "http://127.0.0.1:4566"},
		"custom and fips":       {region: "us-east-1", base: "http://127.0.0.1:4566", src: source{fips: aws.FIPSEndpointStateEnabled}},
		"custom and dual-stack": {region: "us-east-1", src: source{service: own, dual: aws.DualStackEndpointStateEnabled}},
		"not a URL":             {region: "us-east-1", base: "127.0.0.1:4566"},
		"no region":             {base: "http://127.0.0.1:4566"},
		"bad region":            {region: "us-east-1.", want: ""},
	} {
		cfg := aws.Config{Region: tc.region, ConfigSources: []any{tc.src}}
		if tc.base != "" {
			cfg.BaseEndpoint = aws.String(tc.base)
		}
		u, err := Resolve(&cfg, "Bedrock Runtime", "bedrock-runtime")
		switch {
		case tc.want == "" && !errors.Is(err, infinity.ErrInvalid):
			t.Errorf("%s: %v, %v; want ErrInvalid", name, u, err)
		case tc.want != "" && (err != nil || u.String() != tc.want):
			t.Errorf("%s: %v, %v; want %s", name, u, err, tc.want)
		}
	}
	// With AWS_ENDPOINT_URL set and no AWS_ENDPOINT_URL_BEDROCK_RUNTIME, the
	// SDK's client keeps the base endpoint whatever the sources say.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:4566"), ConfigSources: []any{source{service: own}}}
	if u, err := Resolve(&cfg, "Bedrock Runtime", "bedrock-runtime"); err != nil || u.String() != "http://127.0.0.1:4566" {
		t.Errorf("global only: %v, %v", u, err)
	}
	t.Setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9000")
	if u, err := Resolve(&cfg, "Bedrock Runtime", "bedrock-runtime"); err != nil || u.String() != "http://127.0.0.1:9000" {
		t.Errorf("both: %v, %v", u, err)
	}
}

// A service's environment variables are found by its SDK id, through the
// SDK's own configuration loading.
func TestResolveFromEnvironment(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "https://scheduler.eu-west-1.amazonaws.com"},
		{map[string]string{"AWS_USE_FIPS_ENDPOINT": "true"}, "https://scheduler-fips.eu-west-1.amazonaws.com"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "http://127.0.0.1:9"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ENDPOINT_URL_SCHEDULER": "http://127.0.0.1:8"}, "http://127.0.0.1:8"},
		{map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:7"}, "https://scheduler.eu-west-1.amazonaws.com"},
		{map[string]string{"AWS_ENDPOINT_URL_SCHEDULER": "http://127.0.0.1:8", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "https://scheduler.eu-west-1.amazonaws.com"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			awstest.Isolate(t)
			t.Setenv("AWS_REGION", "eu-west-1")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := config.LoadDefaultConfig(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if u, err := Resolve(&cfg, "Scheduler", "scheduler"); err != nil || u.String() != tc.want {
				t.Errorf("%v: %v, %v; want %s", tc.env, u, err, tc.want)
			}
		})
	}
	awstest.Isolate(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:7")
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if u, err := Resolve(&cfg, "Secrets Manager", "secretsmanager"); err != nil || u.String() != "http://127.0.0.1:7" {
		t.Errorf("Secrets Manager: %v, %v", u, err)
	}
}
