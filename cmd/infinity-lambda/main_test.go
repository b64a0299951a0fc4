package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
)

func TestAWSConfigFromEnvironment(t *testing.T) {
	env := map[string]string{"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "tok"}
	cfg, err := awsConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(t.Context())
	if err != nil || cfg.Region != "eu-west-1" || creds.AccessKeyID != "AKID" || creds.SessionToken != "tok" {
		t.Fatalf("config %+v, credentials %+v, %v", cfg, creds, err)
	}
	delete(env, "AWS_SECRET_ACCESS_KEY")
	if _, err := awsConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("missing secret: %v", err)
	}
}

// The bootstrap serves Bedrock with the function's own configuration.
func TestBedrockProvider(t *testing.T) {
	cfg, err := awsConfig(func(k string) string {
		return map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	build := providers(cfg, nil, func(string) string { return "" })["bedrock"]
	if build == nil {
		t.Fatal("no bedrock provider")
	}
	models := []infinity.ModelInfo{{ID: "us.anthropic.claude-sonnet-4-5-v1:0", ContextWindow: 200000, MaxOutput: 64000}}
	p, err := build(models)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.Models(t.Context()); err != nil || len(got) != 1 || got[0].ID != models[0].ID {
		t.Fatalf("Models = %+v, %v", got, err)
	}
	if _, err := build(nil); !errors.Is(err, infinity.ErrInvalid) {
		t.Fatalf("no models: %v, want ErrInvalid", err)
	}
}

type fakeSecrets map[string]string

func (f fakeSecrets) SecretString(_ context.Context, arn string) (string, error) {
	v, ok := f[arn]
	if !ok {
		return "", fmt.Errorf("get secret %s: %w", arn, infinity.ErrNotFound)
	}
	return v, nil
}

// The network providers' settings: the secret's values, then the
// environment's; a secret that cannot be read or is not a JSON object
// fails the provider with an error naming the variable.
func TestModelKeysFromASecret(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:keys"
	models := []infinity.ModelInfo{{ID: "m", ContextWindow: 1000, MaxOutput: 100}}
	for name, c := range map[string]struct {
		secrets fakeSecrets
		env     map[string]string
		err     error // nil: both providers build
	}{
		"from the secret":      {fakeSecrets{arn: `{"ANTHROPIC_API_KEY":"a","OPENAI_API_KEY":"o"}`}, map[string]string{EnvModelKeysSecretARN: arn}, nil},
		"from the environment": {nil, map[string]string{"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"}, nil},
		"secret over env": {fakeSecrets{arn: `{"ANTHROPIC_API_KEY":"a","OPENAI_API_KEY":"o","ANTHROPIC_BASE_URL":"http://127.0.0.1:1","OPENAI_BASE_URL":"http://127.0.0.1:1/v1"}`},
			map[string]string{EnvModelKeysSecretARN: arn, "ANTHROPIC_BASE_URL": "not a URL", "OPENAI_BASE_URL": "not a URL"}, nil}, // builds only if the secret's win
		"missing secret":     {fakeSecrets{}, map[string]string{EnvModelKeysSecretARN: arn}, infinity.ErrNotFound},
		"not an object":      {fakeSecrets{arn: `["a"]`}, map[string]string{EnvModelKeysSecretARN: arn}, infinity.ErrInvalid},
		"no key anywhere":    {nil, map[string]string{}, infinity.ErrInvalid},
		"no secrets manager": {nil, map[string]string{EnvModelKeysSecretARN: arn}, infinity.ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			var sr cloud.SecretReader
			if c.secrets != nil {
				sr = c.secrets
			}
			ps := providers(aws.Config{}, sr, func(k string) string { return c.env[k] })
			for _, p := range []string{"anthropic", "openai"} {
				_, err := ps[p](models)
				if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
					t.Errorf("%s: %v, want %v", p, err, c.err)
				}
				if err != nil && c.env[EnvModelKeysSecretARN] != "" && !strings.Contains(err.Error(), EnvModelKeysSecretARN) {
					t.Errorf("%s: %v does not name %s", p, err, EnvModelKeysSecretARN)
				}
			}
		})
	}
}

// A key missing from the secret: the error says which variable, and that
// it belongs in the secret (not the provider's Config or FromEnv, which a
// function's owner does not set).
func TestModelKeyMissingFromTheSecret(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:keys"
	models := []infinity.ModelInfo{{ID: "m", ContextWindow: 1000, MaxOutput: 100}}
	env := map[string]string{EnvModelKeysSecretARN: arn}
	ps := providers(aws.Config{}, fakeSecrets{arn: `{"OPENAI_API_KEY":"o"}`}, func(k string) string { return env[k] })
	if _, err := ps["openai"](models); err != nil {
		t.Fatalf("openai, whose key the secret holds: %v", err)
	}
	_, err := ps["anthropic"](models)
	if !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), "ANTHROPIC_API_KEY is neither in the secret "+EnvModelKeysSecretARN+" ("+arn+") names") {
		t.Errorf("anthropic without its key in the secret: %v", err)
	}
	_, err = providers(aws.Config{}, nil, func(string) string { return "" })["anthropic"](models)
	if !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), "name the secret in "+EnvModelKeysSecretARN) {
		t.Errorf("anthropic without a secret or a key: %v", err)
	}
}
