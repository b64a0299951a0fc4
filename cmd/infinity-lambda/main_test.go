package main

import (
	"strings"
	"testing"
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
