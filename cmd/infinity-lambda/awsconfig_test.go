package main

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/awstest"
	"github.com/infinity-runtime/infinity/models/bedrock"
)

// clientEndpoints is what a service client took from its configuration:
// its base endpoint and whether it uses FIPS or dual-stack endpoints.
type clientEndpoints struct {
	Base string
	FIPS aws.FIPSEndpointState
	Dual aws.DualStackEndpointState
}

func endpointsOf(cfg aws.Config) map[string]clientEndpoints {
	out := map[string]clientEndpoints{}
	s := sqs.NewFromConfig(cfg).Options()
	out["sqs"] = clientEndpoints{Base: aws.ToString(s.BaseEndpoint), FIPS: s.EndpointOptions.UseFIPSEndpoint, Dual: s.EndpointOptions.UseDualStackEndpoint}
	d := dynamodb.NewFromConfig(cfg).Options()
	out["dynamodb"] = clientEndpoints{Base: aws.ToString(d.BaseEndpoint), FIPS: d.EndpointOptions.UseFIPSEndpoint, Dual: d.EndpointOptions.UseDualStackEndpoint}
	// The Bedrock provider resolves its endpoint itself (FIPS and
	// dual-stack are in the URL); an error stands for its setting.
	if bp, err := bedrock.New(bedrock.Config{AWS: cfg, Models: []infinity.ModelInfo{{ID: "m", ContextWindow: 1, MaxOutput: 1}}}); err != nil {
		out["bedrock"] = clientEndpoints{Base: "error: " + err.Error()}
	} else {
		out["bedrock"] = clientEndpoints{Base: bp.Endpoint()}
	}
	return out
}

// The bootstrap's configuration gives the SDK's clients the endpoints
// config.LoadDefaultConfig would give them, for every endpoint setting of
// the environment the SDK documents.
func TestAWSConfigEndpointsAsTheSDK(t *testing.T) {
	cases := map[string]map[string]string{
		"none":                 {},
		"global":               {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},
		"per service":          {"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:2", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com"},
		"both":                 {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1"},
		"ignored":              {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
		"fips and dual-stack":  {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "TRUE"},
		"fips off":             {"AWS_USE_FIPS_ENDPOINT": "false", "AWS_USE_DUALSTACK_ENDPOINT": "false"},
		"not ignored, spelled": {"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			awstest.Isolate(t)
			t.Setenv("AWS_REGION", "us-east-1")
			t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
			for k, v := range env {
				t.Setenv(k, v)
			}
			sdkCfg, err := config.LoadDefaultConfig(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			mine, err := awsConfig(os.Getenv)
			if err != nil {
				t.Fatal(err)
			}
			want, got := endpointsOf(sdkCfg), endpointsOf(mine)
			for svc := range want {
				if got[svc] != want[svc] {
					t.Errorf("%s: %+v, the SDK's configuration gives %+v", svc, got[svc], want[svc])
				}
			}
		})
	}
	t.Run("a bad flag is named", func(t *testing.T) {
		env := map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_USE_FIPS_ENDPOINT": "yes"}
		if _, err := awsConfig(func(k string) string { return env[k] }); err == nil {
			t.Fatal("AWS_USE_FIPS_ENDPOINT=yes accepted")
		}
	})
}
