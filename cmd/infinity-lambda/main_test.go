package main

import (
	"errors"
	"strings"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
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
	build := providers(cfg)["bedrock"]
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
