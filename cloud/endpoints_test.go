package cloud

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/infinity-runtime/infinity/internal/awstest"
)

// The services called without an SDK client find their endpoints where
// the SDK's clients find theirs.
func TestServiceEndpoint(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "https://scheduler.eu-west-1.amazonaws.com"},
		{map[string]string{"AWS_USE_FIPS_ENDPOINT": "true"}, "https://scheduler-fips.eu-west-1.amazonaws.com"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "http://127.0.0.1:9"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ENDPOINT_URL_SCHEDULER": "http://127.0.0.1:8"}, "http://127.0.0.1:8"},
		{map[string]string{"AWS_ENDPOINT_URL_SCHEDULER": "http://127.0.0.1:8", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "https://scheduler.eu-west-1.amazonaws.com"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) { checkEndpoint(t, tc.env, tc.want) })
	}
}

func checkEndpoint(t *testing.T, env map[string]string, want string) {
	awstest.Isolate(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := serviceEndpoint(cfg, "Scheduler", "scheduler"); got != want {
		t.Errorf("%v: %s, want %s", env, got, want)
	}
}
