package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/models/anthropic"
	"github.com/infinity-runtime/infinity/models/bedrock"
	"github.com/infinity-runtime/infinity/models/openai"
)

// EnvModelKeysSecretARN is where the Anthropic and OpenAI providers' settings
// come from first (cloud.EnvModelKeysSecretARN).
const EnvModelKeysSecretARN = cloud.EnvModelKeysSecretARN

// providers are the network model providers the bootstrap links: Amazon
// Bedrock, called with the function role's credentials (through the
// provider's own small event-stream client: the SDK's bedrockruntime
// client would cost about 1 MB of the bootstrap's budget), and the
// Anthropic and OpenAI APIs over net/http (about 130 KB for both), with
// their keys from the secret EnvModelKeysSecretARN names or the
// environment.
func providers(cfg aws.Config, secrets cloud.SecretReader, getenv func(string) string) agentfile.Providers {
	env := &modelEnv{secrets: secrets, getenv: getenv}
	return agentfile.Providers{
		"bedrock": func(models []infinity.ModelInfo) (infinity.ModelProvider, error) {
			return bedrock.New(bedrock.Config{AWS: cfg, Models: models})
		},
		"anthropic": env.keyed("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", func(key, base string, models []infinity.ModelInfo) (infinity.ModelProvider, error) {
			return anthropic.New(anthropic.Config{APIKey: key, BaseURL: base, Models: models})
		}),
		"openai": env.keyed("OPENAI_API_KEY", "OPENAI_BASE_URL", func(key, base string, models []infinity.ModelInfo) (infinity.ModelProvider, error) {
			return openai.New(openai.Config{APIKey: key, BaseURL: base, Models: models})
		}),
	}
}

// keyed is the constructor of a provider that takes an API key and a base
// URL, read (lookup) from the variables keyName and urlName when the
// agent file's providers are built (at a cold start); a missing key's
// error says where it was looked for.
func (e *modelEnv) keyed(keyName, urlName string, mk func(key, base string, models []infinity.ModelInfo) (infinity.ModelProvider, error)) func([]infinity.ModelInfo) (infinity.ModelProvider, error) {
	return func(models []infinity.ModelInfo) (infinity.ModelProvider, error) {
		v, err := e.lookup(keyName, urlName)
		if err != nil {
			return nil, err
		}
		p, err := mk(v[0], v[1], models)
		if err != nil {
			return nil, e.explain(err, v[0], keyName)
		}
		return p, nil
	}
}

// modelEnv answers the providers' settings: the secret's values first
// (read once, at the first provider that needs them), then the
// environment's.
type modelEnv struct {
	secrets cloud.SecretReader
	getenv  func(string) string

	once   sync.Once
	values map[string]string
	err    error
}

// secretTimeout bounds the read of the secret at a cold start.
const secretTimeout = 10 * time.Second

func (e *modelEnv) lookup(names ...string) ([]string, error) {
	e.once.Do(func() {
		arn := e.getenv(EnvModelKeysSecretARN)
		if arn == "" {
			return
		}
		if e.secrets == nil {
			e.err = fmt.Errorf("%s is set but there is no Secrets Manager client: %w", EnvModelKeysSecretARN, infinity.ErrInvalid)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), secretTimeout)
		defer cancel()
		s, err := e.secrets.SecretString(ctx, arn)
		if err != nil {
			e.err = fmt.Errorf("%s: %w", EnvModelKeysSecretARN, err)
			return
		}
		if err := json.Unmarshal([]byte(s), &e.values); err != nil {
			e.err = fmt.Errorf("%s: the secret %s is not a JSON object of names to strings, such as {\"ANTHROPIC_API_KEY\": \"…\"}: %w", EnvModelKeysSecretARN, arn, infinity.ErrInvalid)
		}
	})
	if e.err != nil {
		return nil, e.err
	}
	out := make([]string, len(names))
	for i, n := range names {
		if v, ok := e.values[n]; ok {
			out[i] = v
		} else {
			out[i] = e.getenv(n)
		}
	}
	return out, nil
}

// explain adds to a provider's error, when it has no key, where the
// bootstrap looked for it: the provider's own message speaks of its
// Config and FromEnv, which a function's owner does not set.
func (e *modelEnv) explain(err error, key, name string) error {
	if key != "" {
		return err
	}
	if arn := e.getenv(EnvModelKeysSecretARN); arn != "" {
		return fmt.Errorf("%w; %s is neither in the secret %s (%s) names nor in the environment: add it to the secret's JSON object", err, name, EnvModelKeysSecretARN, arn)
	}
	return fmt.Errorf("%w; %s is not set: put it in a Secrets Manager secret (a JSON object such as {%q: \"…\"}) and name the secret in %s (the CDK construct's ModelKeys)", err, name, name, EnvModelKeysSecretARN)
}
