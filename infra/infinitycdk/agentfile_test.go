package infinitycdk

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"

	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/cloud"
)

const script = `{"model": "echo", "rules": [{"when": {}, "reply": {"text": "hi"}}]}`

// TestAgentFileIsStaged: the agent file and its script, in a sibling
// directory, reach the asset in the same relative layout, and the agent
// function is pointed at the file under /var/task.
func TestAgentFileIsStaged(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "scripts/echo.json", script)
	path := writeFile(t, dir, "agents/echo.yaml", "name: echo\nmodel:\n  provider: scripted\n  script: ../scripts/echo.json\n")
	s := synth(t, testEnv, func(_ awscdk.Stack, p *InfinityAgentProps) {
		p.AgentFile = path
		p.Model = "scripted/echo"
	})
	env := s.functionEnv(t, "agent")
	if env[envAgentFile] != "/var/task/agent/agents/echo.yaml" || env[envModel] != "scripted/echo" {
		t.Errorf("agent env %s = %v, %s = %v", envAgentFile, env[envAgentFile], envModel, env[envModel])
	}
	staged := s.agent.asset.dir
	st, err := os.Stat(filepath.Join(staged, "bootstrap"))
	if err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("staged bootstrap: %v, mode %v; want an executable", err, st)
	}
	// The staged file loads as the function will load it: its script
	// resolves next to it.
	f, err := agentfile.Load(filepath.Join(staged, "agent", "agents", "echo.yaml"))
	if err != nil {
		t.Fatalf("the staged agent file does not load: %v", err)
	}
	if got, err := os.ReadFile(f.ScriptPath()); err != nil || string(got) != script {
		t.Errorf("staged script %s: %q, %v", f.ScriptPath(), got, err)
	}
	for _, role := range []string{"relay", "receiver", "migrate"} {
		if v, ok := s.functionEnv(t, role)[envAgentFile]; ok {
			t.Errorf("%s function has %s = %v; only the agent runs the agent file", role, envAgentFile, v)
		}
	}
}

func TestReadAgent(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "echo.json", script)
	abs := writeFile(t, dir, "abs.yaml", "name: abs\nmodel:\n  provider: scripted\n  script: "+filepath.Join(dir, "echo.json")+"\n")
	anthropic := writeFile(t, dir, "anthropic.yaml", "name: a\nmodel:\n  provider: anthropic\n  id: claude-sonnet-4-5\n")
	bedrock := writeFile(t, dir, "bedrock.yaml", bedrockAgentFile)
	for _, c := range []struct {
		name, path, model, want string
	}{
		{"missing file", filepath.Join(dir, "nope.yaml"), "", "AgentFile: agentfile: open"},
		{"model not in the file", bedrock, "bedrock/other", `Model: "bedrock/other" is not one of the agent file's models`},
		{"model without an agent file", "", "bedrock/" + haikuModel, "the bundled demo agent's (set AgentFile)"},
	} {
		_, err := readAgent(c.path, c.model)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: readAgent = %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if spec, err := readAgent(anthropic, ""); err != nil || !same(spec.keys, []string{"anthropic"}) {
		t.Errorf("an Anthropic agent: spec %+v, %v; want keys [anthropic]", spec, err)
	}
	spec, err := readAgent(bedrock, "bedrock/"+opusGlobal)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sonnetProfile, haikuModel, opusGlobal}; !same(spec.bedrock, want) || !spec.rap || spec.mcp {
		t.Errorf("spec = %+v, want bedrock %v, RAP servers and no MCP", spec, want)
	}
	// An absolute script path does not exist in the function.
	f, err := agentfile.Load(abs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stage(t.TempDir(), fakeBootstrap(t), f); err == nil || !strings.Contains(err.Error(), "an absolute path") {
		t.Errorf("stage with an absolute script path = %v, want an error", err)
	}
	if _, err := stage(t.TempDir(), filepath.Join(dir, "no-bootstrap"), nil); err == nil || !strings.Contains(err.Error(), "BootstrapPath") {
		t.Errorf("stage without a bootstrap = %v, want an error naming BootstrapPath", err)
	}
}

// TestAgentFileErrorStopsSynth: a bad agent file is reported by cdk synth.
func TestAgentFileErrorStopsSynth(t *testing.T) {
	path := writeFile(t, t.TempDir(), "bad.yaml", "name: Bad Name\nmodel:\n  provider: scripted\n  demo: true\n")
	msg := synthError(t, &InfinityAgentProps{BootstrapPath: fakeBootstrap(t), AgentFile: path})
	if !strings.Contains(msg, "AgentFile:") || !strings.Contains(msg, "bad.yaml") {
		t.Errorf("synth error %q does not name the agent file", msg)
	}
}

// TestModelKeys: an agent file on the Anthropic or OpenAI API needs
// ModelKeys; with it, the agent function is told the secret and may read
// it, and no other function may.
func TestModelKeys(t *testing.T) {
	dir := t.TempDir()
	claude := writeFile(t, dir, "claude.yaml", "name: c\nmodel:\n  provider: anthropic\n  id: claude-sonnet-4-5\nmodels:\n  - {provider: openai, id: gpt-4.1}\n")
	msg := synthError(t, &InfinityAgentProps{BootstrapPath: fakeBootstrap(t), AgentFile: claude})
	if !strings.Contains(msg, "ModelKeys: required: the agent file names anthropic and openai models") {
		t.Errorf("synth without ModelKeys: %q", msg)
	}
	var keys awssecretsmanager.Secret
	s := synth(t, testEnv, func(stack awscdk.Stack, p *InfinityAgentProps) {
		keys = awssecretsmanager.NewSecret(stack, jsii.String("Keys"), nil)
		p.AgentFile, p.ModelKeys = claude, keys
	})
	if got := s.functionEnv(t, "agent")[cloud.EnvModelKeysSecretARN]; !same(got, ref(s.lid(t, keys))) {
		t.Errorf("%s = %v, want the secret's ARN (the variable the bootstrap reads)", cloud.EnvModelKeysSecretARN, got)
	}
	readers := map[string]bool{}
	for _, st := range s.statements() {
		if same(st.actions, []string{"secretsmanager:GetSecretValue"}) && same(st.resources, []any{ref(s.lid(t, keys))}) {
			readers[st.roles[0]] = true
		}
	}
	if agent := s.roleOf(s.functionID(t, "agent")); !readers[agent] || len(readers) != 1 {
		t.Errorf("roles that may read the keys: %v, want the agent's (%s) only", readers, agent)
	}
}

// TestModelKeysEncryptedWithAKey: a ModelKeys secret encrypted with a
// customer managed key can be read: the agent function may decrypt with
// that key (else GetSecretValue is refused and the function never starts),
// and no other function may.
func TestModelKeysEncryptedWithAKey(t *testing.T) {
	claude := writeFile(t, t.TempDir(), "claude.yaml", "name: c\nmodel:\n  provider: anthropic\n  id: claude-sonnet-4-5\n")
	var key awskms.Key
	s := synth(t, testEnv, func(stack awscdk.Stack, p *InfinityAgentProps) {
		key = awskms.NewKey(stack, jsii.String("KeysKey"), &awskms.KeyProps{EnableKeyRotation: jsii.Bool(true)})
		p.AgentFile = claude
		p.ModelKeys = awssecretsmanager.NewSecret(stack, jsii.String("Keys"), &awssecretsmanager.SecretProps{EncryptionKey: key})
	})
	decrypters := map[string]bool{}
	for _, st := range s.statements() {
		if slices.Contains(st.actions, "kms:Decrypt") && same(st.resources, []any{getAtt(s.lid(t, key), "Arn")}) {
			for _, r := range st.roles {
				decrypters[r] = true
			}
		}
	}
	if agent := s.roleOf(s.functionID(t, "agent")); !decrypters[agent] || len(decrypters) != 1 {
		t.Errorf("roles that may decrypt the keys: %v, want the agent's (%s) only", decrypters, agent)
	}
}
