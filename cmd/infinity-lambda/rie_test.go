package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infinity-runtime/infinity/internal/syncbuf"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
	"github.com/infinity-runtime/infinity/internal/secretslocal"
	"github.com/infinity-runtime/infinity/lambda"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
	"github.com/infinity-runtime/infinity/persistence/dsql"
	"github.com/infinity-runtime/infinity/persistence/dynamodb"
	"github.com/infinity-runtime/infinity/telemetry/otlpjson"
	"github.com/infinity-runtime/infinity/tools/rap"
)

func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }

// rieFunction is the real bootstrap binary running under the Lambda
// Runtime Interface Emulator, as the provided.al2023 runtime runs it.
type rieFunction struct {
	addr string
	cmd  *exec.Cmd
	logs *syncBuffer // the function's stdout and stderr
}

// syncBuffer collects output written from many goroutines.
type syncBuffer = syncbuf.Buffer

// startRIE starts the bootstrap under the emulator with env as its whole
// environment.
func startRIE(t *testing.T, rie, bootstrap string, env map[string]string) *rieFunction {
	t.Helper()
	apiPort, rapiPort := freePort(t), freePort(t)
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+apiPort,
		"--runtime-api-address", "127.0.0.1:"+rapiPort, bootstrap)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_FUNCTION_TIMEOUT=30"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s function's log:\n%s", env[cloud.EnvRole], logs.String())
		}
	})
	f := &rieFunction{addr: "127.0.0.1:" + apiPort, cmd: cmd, logs: logs}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", f.addr); err == nil {
			c.Close()
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator did not listen on %s:\n%s", f.addr, logs.String())
		}
	}
}

// invoke posts one event and returns the function's answer (a function
// error comes back as a 200 with errorType in the body).
func (f *rieFunction) invoke(t *testing.T, event any) []byte {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+f.addr+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(`"errorType"`)) {
		t.Fatalf("the function failed: %s", out)
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// The real bootstrap binary, run by the Runtime Interface Emulator against
// the emulators with nothing but environment variables, as Lambda runs
// it: endpoints come from AWS_ENDPOINT_URL_<SERVICE>, the RAP key from a
// Secrets Manager secret. The migrate function creates the schema for a
// CloudFormation event, the agent function answers a user's message, the
// receiver puts a tool's callback on the thread's message group, and the
// relay forwards a due timer.
func TestBootstrapUnderTheRuntimeInterfaceEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bootstrap and the Runtime Interface Emulator, and starts the emulators")
	}
	ctx := t.Context()
	emutest.AWSEnv(t)
	rie := emutest.RIE(t)
	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "bootstrap")
	build := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bootstrap, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the bootstrap: %v\n%s", err, out)
	}

	// The deployment's resources, as the CDK construct makes them.
	sqsEndpoint, ddbEndpoint := emutest.SQS(t), emutest.DynamoDB(t)
	prefix := fmt.Sprintf("rie%08x", rand.Uint32())
	static := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	sqsClient := awssqs.NewFromConfig(static, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(sqsEndpoint) })
	queues, err := sqs.CreateQueues(ctx, sqsClient, prefix, sqs.WithVisibilityTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ddb := awsdynamodb.NewFromConfig(static, func(o *awsdynamodb.Options) {
		o.BaseEndpoint, o.DisableValidateResponseChecksum = aws.String(ddbEndpoint), true
	})
	if err := dynamodb.CreateTable(ctx, ddb, prefix+"-state"); err != nil {
		t.Fatal(err)
	}
	dbURL := newSchema(t, emutest.Postgres(t), prefix)
	key := rap.NewKey()
	const keyARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:rap-key-AbCdEf"
	const modelKeysARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:model-keys-AbCdEf"
	secrets := httptest.NewServer(secretslocal.New(map[string]string{keyARN: hex.EncodeToString(key),
		modelKeysARN: `{"ANTHROPIC_API_KEY": "sk-ant-from-the-secret"}`}))
	defer secrets.Close()
	agentFile := filepath.Join(dir, "agent.yaml")
	os.WriteFile(filepath.Join(dir, "s.json"), []byte(`{"rules": [{"when": {"last": "user"}, "reply": {"text": "Hello from the bootstrap."}},
		{"when": {"last": "tool_result"}, "reply": {"text": "Got the result."}}]}`), 0o644)
	os.WriteFile(agentFile, []byte("name: rie\nmodel:\n  provider: scripted\n  script: s.json\n"), 0o644)
	env := func(role cloud.Role, more map[string]string) map[string]string {
		m := map[string]string{
			cloud.EnvRole: string(role), "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
			"AWS_ENDPOINT_URL_SQS": sqsEndpoint, "AWS_ENDPOINT_URL_DYNAMODB": ddbEndpoint,
			"AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets.URL, cloud.EnvInputQueueURL: queues.Input.URL,
		}
		for k, v := range more {
			m[k] = v
		}
		return m
	}

	t.Run("migrate", func(t *testing.T) {
		answered := make(chan map[string]any, 1)
		cfn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var resp map[string]any
			json.NewDecoder(r.Body).Decode(&resp)
			answered <- resp
		}))
		defer cfn.Close()
		f := startRIE(t, rie, bootstrap, env(cloud.RoleMigrate, map[string]string{cloud.EnvDatabaseURL: dbURL}))
		event := map[string]any{"RequestType": "Create", "ResponseURL": cfn.URL + "/response", "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/rie/1",
			"RequestId": "r1", "LogicalResourceId": "Schema", "ResourceType": "Custom::InfinitySchema", "ResourceProperties": map[string]any{"SchemaVersion": "1"}}
		f.invoke(t, event)
		if resp := <-answered; resp["Status"] != "SUCCESS" || resp["PhysicalResourceId"] != lambda.SchemaResourceID {
			t.Fatalf("CloudFormation was told %v", resp)
		}
		event["RequestType"], event["PhysicalResourceId"] = "Update", lambda.SchemaResourceID
		f.invoke(t, event) // a second deploy: nothing to do, and it says so
		if resp := <-answered; resp["Status"] != "SUCCESS" {
			t.Fatalf("the update was told %v", resp)
		}
	})

	agentEnv := env(cloud.RoleAgent, map[string]string{
		cloud.EnvInputQueueARN: queues.Input.ARN, cloud.EnvRelayQueueURL: queues.Relay.URL, cloud.EnvOutputQueueURL: queues.Output.URL,
		cloud.EnvDeadLetterURL: queues.DeadLetter.URL, cloud.EnvSchedulerRoleARN: "arn:aws:iam::000000000000:role/scheduler",
		cloud.EnvScheduleGroup: prefix, cloud.EnvStateTable: prefix + "-state", cloud.EnvDatabaseURL: dbURL,
		cloud.EnvAgentFile: agentFile, cloud.EnvMaxReceiveCount: "5", "AWS_ENDPOINT_URL_SCHEDULER": "http://127.0.0.1:1",
	})
	conv := dsql.New(pool(t, dbURL), dsql.WithDialect(dsql.PostgreSQL))
	t.Run("agent", func(t *testing.T) {
		// An OTLP/HTTP collector: the function sends it the slice's spans
		// before its invocation answers.
		var mu sync.Mutex
		var traces []otlpjson.ExportRequest
		collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req otlpjson.ExportRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != "/v1/traces" {
				t.Errorf("collector: %s: %v", r.URL.Path, err)
			}
			mu.Lock()
			traces = append(traces, req)
			mu.Unlock()
		}))
		defer collector.Close()
		agentEnv := maps.Clone(agentEnv)
		agentEnv["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.URL
		f := startRIE(t, rie, bootstrap, agentEnv)
		body, _ := json.Marshal(infinity.InputMessage{ID: "m1", GroupID: "rie-root", Content: infinity.TextContent("hello")})
		out := f.invoke(t, events.SQSEvent{Records: []events.SQSMessage{sqsRecord("r1", "rie-root", string(body), queues.Input.ARN)}})
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("answer %s: %v", out, err)
		}
		items, err := conv.Items(ctx, "rie-root", 0, -1)
		if err != nil || len(items) != 2 || items[1].Text != "Hello from the bootstrap." {
			t.Fatalf("history %+v, %v", items, err)
		}
		if got := receive(t, sqsClient, queues.Output.URL); !strings.Contains(got, "Hello from the bootstrap.") {
			t.Fatalf("output queue: %s", got)
		}
		mu.Lock()
		var names []string
		for _, req := range traces {
			for _, s := range req.ResourceSpans[0].ScopeSpans[0].Spans {
				names = append(names, s.Name)
			}
		}
		mu.Unlock()
		slices.Sort(names)
		if want := []string{"commit", "load", "model scripted/scripted", "slice"}; !slices.Equal(names, want) {
			t.Errorf("spans at the collector when the invocation answered: %v, want %v", names, want)
		}
		// The slice's embedded-metric-format line, in the function's log.
		var emf map[string]any
		for line := range strings.Lines(f.logs.String()) {
			if strings.Contains(line, `"_aws"`) && json.Unmarshal([]byte(line), &emf) == nil && emf["ThreadId"] == "rie-root" {
				break
			}
			emf = nil
		}
		if emf == nil || emf["Outcome"] != "committed" || emf["ModelCalls"] != 1.0 || emf["Function"] == "" {
			t.Errorf("EMF line %v in the log:\n%s", emf, f.logs.String())
		}
	})

	// The Anthropic provider, its key from a Secrets Manager secret, against
	// a local server that speaks the Messages API's wire format.
	t.Run("agent on Anthropic", func(t *testing.T) {
		var mu sync.Mutex
		var keys []string
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			keys = append(keys, r.Header.Get("X-Api-Key")+" "+r.Header.Get("Anthropic-Version"))
			mu.Unlock()
			if r.URL.Path != "/v1/messages" {
				http.Error(w, r.URL.Path, http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			for _, ev := range []string{
				`{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}`,
				`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
				`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello from Claude."}}`,
				`{"type":"content_block_stop","index":0}`,
				`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}`,
				`{"type":"message_stop"}`,
			} {
				fmt.Fprintf(w, "event: x\ndata: %s\n\n", ev)
			}
		}))
		defer api.Close()
		claude := filepath.Join(dir, "claude.yaml")
		os.WriteFile(claude, []byte("name: claude\nmodel:\n  provider: anthropic\n  id: claude-test\n  context_window: 200000\n  max_output: 8192\n"), 0o644)
		agentEnv := maps.Clone(agentEnv)
		agentEnv[cloud.EnvAgentFile], agentEnv[EnvModelKeysSecretARN], agentEnv["ANTHROPIC_BASE_URL"] = claude, modelKeysARN, api.URL
		f := startRIE(t, rie, bootstrap, agentEnv)
		body, _ := json.Marshal(infinity.InputMessage{ID: "m1", GroupID: "rie-claude", Content: infinity.TextContent("hello")})
		out := f.invoke(t, events.SQSEvent{Records: []events.SQSMessage{sqsRecord("r3", "rie-claude", string(body), queues.Input.ARN)}})
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("answer %s: %v", out, err)
		}
		items, err := conv.Items(ctx, "rie-claude", 0, -1)
		if err != nil || len(items) != 2 || items[1].Text != "Hello from Claude." {
			t.Fatalf("history %+v, %v", items, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(keys) != 1 || keys[0] != "sk-ant-from-the-secret 2023-06-01" {
			t.Errorf("the API saw key and version %q", keys)
		}
		if strings.Contains(f.logs.String(), "sk-ant-from-the-secret") {
			t.Errorf("the key is in the function's log:\n%s", f.logs.String())
		}
	})

	t.Run("receiver", func(t *testing.T) {
		f := startRIE(t, rie, bootstrap, env(cloud.RoleReceiver, map[string]string{
			cloud.EnvRAPKeySecretARN: keyARN, cloud.EnvOutputQueueURL: queues.Output.URL}))
		callback, err := url.Parse(rap.Tokens{Key: key}.CallbackURL("https://abc.lambda-url.us-east-1.on.aws", "rie-root", "call-1"))
		if err != nil {
			t.Fatal(err)
		}
		req := events.LambdaFunctionURLRequest{Version: "2.0", RawPath: callback.Path, RawQueryString: callback.RawQuery,
			Headers: map[string]string{"content-type": "application/json", "host": callback.Host},
			Body:    `{"type":"tool_result","group_id":"rie-root","id":"call-1","text":"done"}`}
		req.RequestContext.DomainName, req.RequestContext.HTTP.Method = callback.Host, "POST"
		var resp events.LambdaFunctionURLResponse
		if err := json.Unmarshal(f.invoke(t, req), &resp); err != nil || resp.StatusCode != 200 {
			t.Fatalf("answer %+v: %v", resp, err)
		}
		if got := receive(t, sqsClient, queues.Input.URL); !strings.Contains(got, "call-1") || !strings.Contains(got, "done") {
			t.Fatalf("input queue: %s", got)
		}
		// A forged token is refused, and nothing is queued.
		req.RawPath = strings.Replace(req.RawPath, "/callback/", "/callback/x", 1)
		if err := json.Unmarshal(f.invoke(t, req), &resp); err != nil || resp.StatusCode != 401 {
			t.Fatalf("forged token: %+v, %v", resp, err)
		}
	})

	t.Run("relay", func(t *testing.T) {
		f := startRIE(t, rie, bootstrap, env(cloud.RoleRelay, map[string]string{cloud.EnvDeadLetterURL: queues.RelayDeadLetter.URL}))
		msg, _ := json.Marshal(infinity.InputMessage{ID: "wake-1", GroupID: "rie-root", Content: infinity.TextContent("")})
		body, _ := json.Marshal(map[string]any{"message": json.RawMessage(msg)})
		rec := sqsRecord("r2", "", string(body), queues.Relay.ARN)
		var resp events.SQSEventResponse
		if err := json.Unmarshal(f.invoke(t, events.SQSEvent{Records: []events.SQSMessage{rec}}), &resp); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("answer %+v: %v", resp, err)
		}
		if got := receive(t, sqsClient, queues.Input.URL); !strings.Contains(got, "wake-1") {
			t.Fatalf("input queue: %s", got)
		}
	})
}

func sqsRecord(id, group, body, arn string) events.SQSMessage {
	attrs := map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": "1764064800000"}
	if group != "" {
		attrs["MessageGroupId"], attrs["SequenceNumber"], attrs["MessageDeduplicationId"] = group, "1", id
	}
	return events.SQSMessage{MessageId: id, ReceiptHandle: "rh-" + id, Body: body, Attributes: attrs,
		EventSource: "aws:sqs", EventSourceARN: arn, AWSRegion: "us-east-1"}
}

// receive takes one message from a queue and returns its body.
func receive(t *testing.T, c *awssqs.Client, queue string) string {
	t.Helper()
	out, err := c.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(queue), WaitTimeSeconds: 5, MaxNumberOfMessages: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) == 0 {
		t.Fatalf("nothing on %s", queue)
	}
	c.DeleteMessage(t.Context(), &awssqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: out.Messages[0].ReceiptHandle})
	return aws.ToString(out.Messages[0].Body)
}

// newSchema makes an empty database schema for the deployment and returns
// the URL that connects to it.
func newSchema(t *testing.T, pgURL, schema string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func pool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
