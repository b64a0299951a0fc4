package cloud_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/internal/secretslocal"
)

const rapSecret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rap-AbCdEf"

func secretsServer(t *testing.T, secrets map[string]string) (*secretslocal.Server, *cloud.SecretsManager) {
	t.Helper()
	s := secretslocal.New(secrets)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	sm, err := cloud.NewSecretsManager(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s, sm
}

func TestSecretsManager(t *testing.T) {
	_, sm := secretsServer(t, map[string]string{rapSecret: "00ff"})
	if v, err := sm.SecretString(t.Context(), rapSecret); err != nil || v != "00ff" {
		t.Fatalf("SecretString = %q, %v", v, err)
	}
	if _, err := sm.SecretString(t.Context(), rapSecret+"x"); !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("missing secret: %v, want ErrNotFound", err)
	}
	if _, err := cloud.NewSecretsManager(aws.Config{Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}, ""); !errors.Is(err, infinity.ErrInvalid) {
		t.Fatalf("no region: %v", err)
	}
}

// The receiver reads its RAP key from Secrets Manager at cold start; the
// key is never in its environment. A secret that is not a key, or one that
// cannot be read, stops the function before its first event.
func TestOpenReadsTheRAPKeyFromItsSecret(t *testing.T) {
	key := strings.Repeat("0123456789abcdef", 4)
	srv, sm := secretsServer(t, map[string]string{rapSecret: key + "\n", rapSecret + "-bad": "not hex"})
	m := map[string]string{cloud.EnvRole: "receiver", cloud.EnvRegion: "us-east-1",
		cloud.EnvInputQueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/in.fifo", cloud.EnvRAPKeySecretARN: rapSecret}
	cfg, err := cloud.LoadConfig(env(m))
	if err != nil {
		t.Fatal(err)
	}
	f, err := cloud.Open(t.Context(), cfg, cloud.Options{AWS: testAWS, Secrets: sm})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Config.RAPKey) != 32 || srv.Calls() != 1 {
		t.Fatalf("key %x after %d calls", f.Config.RAPKey, srv.Calls())
	}

	cfg.RAPKeySecretARN = rapSecret + "-bad"
	if _, err := cloud.Open(t.Context(), cfg, cloud.Options{AWS: testAWS, Secrets: sm}); !errors.Is(err, infinity.ErrInvalid) || strings.Contains(err.Error(), "not hex\"") {
		t.Fatalf("bad secret: %v", err)
	}
	cfg.RAPKeySecretARN = rapSecret + "-gone"
	if _, err := cloud.Open(t.Context(), cfg, cloud.Options{AWS: testAWS, Secrets: sm}); !errors.Is(err, infinity.ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
	if _, err := cloud.Open(t.Context(), cfg, cloud.Options{AWS: testAWS}); !errors.Is(err, infinity.ErrNotImplemented) {
		t.Fatalf("no secret reader: %v", err)
	}
}

// INFINITY_MODEL picks one of the agent file's models; anything else is
// refused with the list.
func TestOpenModelMustBeTheAgentFiles(t *testing.T) {
	m := agentEnv()
	m[cloud.EnvModel] = "bedrock/some-model"
	cfg, err := cloud.LoadConfig(env(m))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cloud.Open(t.Context(), cfg, cloud.Options{AWS: testAWS})
	if !errors.Is(err, infinity.ErrInvalid) || !strings.Contains(err.Error(), `INFINITY_MODEL "bedrock/some-model" is not one of the agent file's models (scripted/`) {
		t.Fatalf("err = %v", err)
	}
}

var testAWS = aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
