//go:build cloud

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/cloudctl"
	"github.com/infinity-runtime/infinity/cloudlocal"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
)

// reverseScript spawns three children that finish in the reverse of
// their spawn order: A sleeps 2 s, B 1 s, C reports at once. Numbering by
// arrival would call C root/1; spawn order calls it root/3.
const reverseScript = `{"rules": [
  {"when": {"depth": 0, "last_tool": "receive_event__injected", "count": {"tool": "receive_event__injected", "min": 3}},
   "reply": {"text": "All three children reported back."}},
  {"when": {"depth": 0, "last_tool": "receive_event__injected"}, "reply": {"calls": [{"name": "sleep_until_event_or_input", "args": {}}]}},
  {"when": {"depth": 0, "last_tool": "spawn_thread"},
   "reply": {"text": "Three children are running.", "calls": [{"name": "sleep_until_event_or_input", "args": {}}]}},
  {"when": {"depth": 0, "last_tool": "sleep_until_event_or_input"}, "reply": {"calls": [{"name": "sleep_until_event_or_input", "args": {}}]}},
  {"when": {"depth": 0, "last": "user", "count": {"tool": "receive_event__injected", "min": 3}}, "reply": {"text": "Still done."}},
  {"when": {"depth": 0, "last": "user"}, "reply": {"text": "Spawning.", "calls": [
    {"name": "spawn_thread", "args": {"instructions": "task A: sleep two seconds", "child_of": "$STACK"}},
    {"name": "spawn_thread", "args": {"instructions": "task B: sleep one second", "child_of": "$STACK"}},
    {"name": "spawn_thread", "args": {"instructions": "task C: report at once", "child_of": "$STACK"}}]}},
  {"when": {"depth": 1, "last_tool": "spawn_thread", "last_text": "task A"}, "reply": {"calls": [{"name": "sleep", "args": {"seconds": 2}}]}},
  {"when": {"depth": 1, "last_tool": "spawn_thread", "last_text": "task B"}, "reply": {"calls": [{"name": "sleep", "args": {"seconds": 1}}]}},
  {"when": {"depth": 1, "last_tool": "spawn_thread", "last_text": "task C"},
   "reply": {"calls": [{"name": "close_thread", "args": {"thread_id": "$THREAD", "report_to_parent": "$THREAD did C."}}]}},
  {"when": {"depth": 1, "last_tool": "sleep"},
   "reply": {"calls": [{"name": "close_thread", "args": {"thread_id": "$THREAD", "report_to_parent": "$THREAD slept."}}]}},
  {"when": {"depth": 1, "last_tool": "close_thread"}, "reply": {"text": "Done."}}
]}`

// startCloudStack runs a local stack with the reverse agent and sets the
// environment "infinity cloud-local" prints (read back from its output),
// with the emulators' dummy credentials.
func startCloudStack(t *testing.T) *cloudlocal.Stack {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.json"), []byte(reverseScript), 0o644); err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(agent, []byte("name: reverse\nmodel:\n  provider: scripted\n  script: s.json\nlimits:\n  max_depth: 2\n  max_children: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return startCloudStackWith(t, agent)
}

// startCloudStackWith is startCloudStack with the agent file agent.
func startCloudStackWith(t *testing.T, agent string) *cloudlocal.Stack {
	t.Helper()
	emutest.AWSEnv(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := cloudlocal.Start(t.Context(), cloudlocal.Options{
		PostgresURL: emutest.Postgres(t), DynamoDBEndpoint: emutest.DynamoDB(t), SQSEndpoint: emutest.SQS(t),
		AgentFile: agent, TimeScale: 0.001, Visibility: 4 * time.Second, FunctionTimeout: 3 * time.Second,
		SliceMargin: 500 * time.Millisecond, Concurrency: 4, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	var env bytes.Buffer
	printStackEnv(&env, s)
	sc := bufio.NewScanner(&env)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		t.Setenv(k, v)
	}
	if os.Getenv(cloud.EnvInputQueueURL) == "" || os.Getenv("AWS_ENDPOINT_URL_SQS") == "" {
		t.Fatalf("the printed environment lacks the queues:\n%s", env.String())
	}
	return s
}

// cloudRun runs a CLI command in-process and returns its output.
func cloudRun(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(ctx, args, &out, &errOut)
	return out.String() + errOut.String(), err
}

var spawnedLine = regexp.MustCompile(`\+ (root/\d+): thread (\S+)`)

// checkTranscript checks a transcript of the reverse tree: children named
// in spawn order (root/1 slept 2 s and closed last), and each child's
// lines before the root's first line about its report. It returns the
// children's ids by name.
func checkTranscript(t *testing.T, what, out string) map[string]string {
	t.Helper()
	lines := strings.Split(out, "\n")
	ids := map[string]string{}
	for _, l := range lines {
		if m := spawnedLine.FindStringSubmatch(l); m != nil {
			ids[m[1]] = m[2]
		}
	}
	if len(ids) != 3 {
		t.Fatalf("%s: children %v, want root/1..3:\n%s", what, ids, out)
	}
	index := func(sub string) int {
		for i, l := range lines {
			if strings.Contains(l, sub) {
				return i
			}
		}
		t.Errorf("%s lacks %q", what, sub)
		return -1
	}
	// Spawn order: A (2 s) is root/1, B (1 s) root/2, C (no sleep) root/3.
	index(`root/1  call sleep {"seconds":2}`)
	index(`root/2  call sleep {"seconds":1}`)
	// Arrival order is the reverse.
	if c3, c2, c1 := index("x root/3 closed"), index("x root/2 closed"), index("x root/1 closed"); !(c3 < c2 && c2 < c1) {
		t.Errorf("%s: children closed at lines %d, %d, %d; want root/3, root/2, root/1 in that order", what, c1, c2, c3)
	}
	for k := 1; k <= 3; k++ {
		name := fmt.Sprintf("root/%d", k)
		last, about := -1, -1
		for i, l := range lines {
			if strings.Contains(l, "  "+name+"  ") || strings.Contains(l, "x "+name+" closed") {
				last = i
			}
			if about < 0 && strings.Contains(l, "  root  ") && strings.Contains(l, "receive_event__injected") && strings.Contains(l, ids[name]) {
				about = i
			}
		}
		if last < 0 || about < 0 || last > about {
			t.Errorf("%s: %s's last line is %d, the root's first line about it %d: want the child's first", what, name, last, about)
		}
	}
	if t.Failed() {
		t.Logf("%s:\n%s", what, out)
	}
	return ids
}

// The cloud commands against cloud-local, driven through the CLI with the
// environment cloud-local prints: start --follow, logs -f, send (with a
// repeated --id), ls and tree (text and JSON), the dead-letter queue
// (listing with attributes, redrive), and --stack through a stand-in for
// CloudFormation's DescribeStacks.
func TestCloudCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulators")
	}
	s := startCloudStack(t)
	ctx := t.Context()

	// migrate needs only the database settings, and repeats harmlessly
	// (cloud-local's schema is already there).
	for range 2 {
		if out := cmdOut(t, "cloud", "migrate"); !strings.HasPrefix(out, "schema up to date in ") {
			t.Errorf("migrate: %s", out)
		}
	}

	// start --follow: the tree's transcript until it settles.
	out := cmdOut(t, "cloud", "start", "--follow", "--thread", "cli-root", "Run the children.")
	if !strings.HasPrefix(out, "started thread cli-root (message ") || !strings.HasSuffix(out, "-- cli-root settled: every thread of it is closed or waits for input\n") {
		t.Errorf("start --follow:\n%s", out)
	}
	ids := checkTranscript(t, "start --follow", out)
	if _, err := cloudRun(ctx, "cloud", "start", "--thread", "cli-root", "again"); !errors.Is(err, infinity.ErrExists) {
		t.Errorf("start on an existing thread: %v", err)
	}

	// logs -f follows the same tree; input sent meanwhile shows up.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var follow syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(fctx, []string{"cloud", "logs", "-f", "cli-root"}, &follow, io.Discard) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(follow.String(), "All three children reported back.") {
		if time.Now().After(deadline) {
			t.Fatalf("logs -f never showed the answer:\n%s", follow.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := cmdOut(t, "cloud", "send", "cli-root", "Are", "you", "done?"); !strings.Contains(out, "sent message ") {
		t.Errorf("send: %s", out)
	}
	for !strings.Contains(follow.String(), "Still done.") {
		if time.Now().After(deadline) {
			t.Fatalf("logs -f never showed the reply to the sent message:\n%s", follow.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("logs -f: %v", err)
	}
	checkTranscript(t, "logs -f", follow.String())
	if !strings.Contains(follow.String(), "root  user> Are you done?") {
		t.Errorf("logs -f lacks the sent message:\n%s", follow.String())
	}

	// A repeated send with one --id is applied once.
	cmdOut(t, "cloud", "send", "--id", "dup-1", "cli-root", "once")
	cmdOut(t, "cloud", "send", "--id", "dup-1", "cli-root", "once")
	var sent cloudctl.Sent
	if err := json.Unmarshal([]byte(cmdOut(t, "cloud", "send", "--json", "cli-root", "last")), &sent); err != nil || sent.Thread != "cli-root" || sent.Message == "" {
		t.Errorf("send --json: %+v, %v", sent, err)
	}
	logs := waitFor(t, "user> last", "cloud", "logs", "cli-root")
	if n := strings.Count(logs, "user> once"); n != 1 {
		t.Errorf("the message sent twice with --id dup-1 shows %d times:\n%s", n, logs)
	}
	checkTranscript(t, "logs", logs)
	var lines []cloudctl.Line
	for l := range strings.Lines(cmdOut(t, "cloud", "logs", "--json", "cli-root")) {
		var v cloudctl.Line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("logs --json line %q: %v", l, err)
		}
		lines = append(lines, v)
	}
	if len(lines) < 10 || lines[0].Event != cloudctl.EventSpawned || lines[0].Name != "root" || lines[1].Item == nil || lines[1].Item.Text != "Run the children." {
		t.Errorf("logs --json starts %+v", lines[:min(2, len(lines))])
	}
	if out, err := cloudRun(ctx, "cloud", "send", "nope", "hello"); !errors.Is(err, infinity.ErrNotFound) || !strings.Contains(err.Error(), "infinity cloud start") {
		t.Errorf("send to an unknown thread: %v\n%s", err, out)
	}
	if _, err := cloudRun(ctx, "cloud", "send", ids["root/1"], "hello"); !errors.Is(err, infinity.ErrClosed) {
		t.Errorf("send to a closed thread: %v", err)
	}
	for _, args := range [][]string{{"cloud", "logs", "nope"}, {"cloud", "logs", "-f", "nope"}, {"cloud", "tree", "nope"}} {
		if _, err := cloudRun(ctx, args...); !errors.Is(err, infinity.ErrNotFound) || !strings.Contains(err.Error(), "infinity cloud ls --all") {
			t.Errorf("%v: %v", args, err)
		}
	}

	// ls and tree, text and JSON.
	if out := cmdOut(t, "cloud", "ls"); !strings.Contains(out, "cli-root") || !strings.Contains(out, "waiting for input") || strings.Contains(out, ids["root/1"]) {
		t.Errorf("ls:\n%s", out)
	}
	if out := cmdOut(t, "cloud", "ls", "--all"); strings.Count(out, "  closed  ") != 3 || !strings.Contains(out, ids["root/2"]) {
		t.Errorf("ls --all:\n%s", out)
	}
	var roots []cloudctl.Thread
	if err := json.Unmarshal([]byte(cmdOut(t, "cloud", "ls", "--json")), &roots); err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0].ID != "cli-root" || roots[0].Status != cloudctl.StatusWaiting || roots[0].Detail != cloudctl.WaitingForInput ||
		roots[0].Children != 3 || roots[0].Tokens.Output == 0 {
		t.Errorf("ls --json: %+v", roots)
	}
	tree := cmdOut(t, "cloud", "tree")
	for _, want := range []string{"root  cli-root  waiting for input", "├── root/1  " + ids["root/1"] + "  closed", "└── root/3  " + ids["root/3"] + "  closed", "; subtree "} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	var tr cloudctl.Tree
	if err := json.Unmarshal([]byte(cmdOut(t, "cloud", "tree", "--json", "cli-root")), &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Threads) != 3 || tr.Name != "root" || tr.Subtree.Output <= tr.Tokens.Output {
		t.Fatalf("tree --json: %+v", tr)
	}
	for i, k := range tr.Threads {
		name := fmt.Sprintf("root/%d", i+1)
		if k.Name != name || string(k.ID) != ids[name] || k.Status != cloudctl.StatusClosed {
			t.Errorf("tree --json child %d: %+v, want %s %s closed", i, k.Thread, name, ids[name])
		}
	}
	if out := cmdOut(t, "cloud", "tree", ids["root/2"]); !strings.HasPrefix(out, "root/2  "+ids["root/2"]+"  closed") {
		t.Errorf("tree of a child: %s", out)
	}
	var trees []cloudctl.Tree
	if err := json.Unmarshal([]byte(cmdOut(t, "cloud", "tree", "--json")), &trees); err != nil || len(trees) != 1 {
		t.Errorf("tree --json: %d trees, %v", len(trees), err)
	}

	t.Run("dlq", func(t *testing.T) { testCloudDLQ(t, s) })
	t.Run("stack", func(t *testing.T) { testCloudStack(t, s) })
}

// testCloudDLQ: a poison record the agent function dead-letters, and a
// record as the function dead-letters one whose slice failed on its last
// receive (a model outage); dlq lists both with their attributes, redrive
// moves them back, and the second one is then applied.
func testCloudDLQ(t *testing.T, s *cloudlocal.Stack) {
	ctx := t.Context()
	if out := cmdOut(t, "cloud", "dlq"); !strings.Contains(out, "the dead-letter queue is empty") {
		t.Errorf("dlq of an empty queue: %s", out)
	}
	// The poison: a body no engine applies, to the input queue.
	poison := `{"id":"poison-1","group_id":"cli-poison","content":{"type":"bogus"}}`
	if _, err := s.SQS.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(s.Queues.Input.URL), MessageBody: aws.String(poison),
		MessageGroupId: aws.String("cli-poison"), MessageDeduplicationId: aws.String("poison-1")}); err != nil {
		t.Fatal(err)
	}
	// The outage: what the agent function sends after a slice failed on
	// its last receive.
	late, _ := json.Marshal(infinity.InputMessage{ID: "late-1", GroupID: "cli-root", Content: infinity.TextContent("Did the outage end?")})
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(s.Queues.DeadLetter.URL), MessageBody: aws.String(string(late)),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			cloudctl.AttrError:        {DataType: aws.String("String"), StringValue: aws.String("slice failed on receive 5 of 5: model overloaded")},
			cloudctl.AttrThread:       {DataType: aws.String("String"), StringValue: aws.String("cli-root")},
			cloudctl.AttrMessageID:    {DataType: aws.String("String"), StringValue: aws.String("input-msg-7")},
			cloudctl.AttrReceiveCount: {DataType: aws.String("String"), StringValue: aws.String("5")},
		}}
	if strings.HasSuffix(s.Queues.DeadLetter.URL, ".fifo") {
		in.MessageGroupId, in.MessageDeduplicationId = aws.String("cli-root"), aws.String("late-1")
	}
	if _, err := s.SQS.SendMessage(ctx, in); err != nil {
		t.Fatal(err)
	}

	var list cloudctl.DeadLetters
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := json.Unmarshal([]byte(cmdOut(t, "cloud", "dlq", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Records) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead-letter queue never held both records: %+v", list)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var poisoned, outage cloudctl.DeadLetter
	for _, d := range list.Records {
		if d.Body == poison {
			poisoned = d
		} else {
			outage = d
		}
	}
	if poisoned.Thread != "cli-poison" || poisoned.MessageID == "" {
		t.Errorf("the poison record: %+v", poisoned)
	}
	// The deployed topology (a FIFO dead-letter queue) comes with the
	// agent function's attributes; a standard one may hold the body alone.
	if _, ok := poisoned.Attributes[cloudctl.AttrError]; (ok || list.FIFO) && (poisoned.Error == "" || poisoned.OriginalID == "" || poisoned.ReceiveCount < 1) {
		t.Errorf("the poison record's attributes: %+v", poisoned)
	}
	if list.FIFO && poisoned.GroupID != "cli-poison" {
		t.Errorf("the poison record's message group: %+v", poisoned)
	}
	if outage.Thread != "cli-root" || outage.Body != string(late) || outage.Error != "slice failed on receive 5 of 5: model overloaded" ||
		outage.OriginalID != "input-msg-7" || outage.ReceiveCount != 5 || len(outage.Attributes) != 4 {
		t.Errorf("the outage record: %+v", outage)
	}
	text := cmdOut(t, "cloud", "dlq")
	for _, want := range []string{outage.MessageID + "  thread cli-root  receives 5  sent ", "    error: slice failed on receive 5 of 5", "    original message: input-msg-7",
		"    body: " + string(late), poisoned.MessageID + "  thread cli-poison"} {
		if !strings.Contains(text, want) {
			t.Errorf("dlq lacks %q:\n%s", want, text)
		}
	}

	// Redrive by id: the record goes back on its thread's group, and the
	// thread applies it.
	out := cmdOut(t, "cloud", "dlq", "redrive", outage.MessageID)
	if !strings.Contains(out, "moved "+outage.MessageID+" (thread cli-root) to the input queue as ") || !strings.HasSuffix(out, "1 record(s) moved\n") {
		t.Errorf("redrive: %s", out)
	}
	logs := waitFor(t, "user> Did the outage end?", "cloud", "logs", "cli-root")
	if _, after, _ := strings.Cut(logs, "user> Did the outage end?\n"); !strings.Contains(strings.SplitN(after, "\n", 2)[0], "root  model> Still done.") {
		t.Errorf("the redriven message was not answered:\n%s", logs)
	}
	// Redrive the rest, as JSON; the poison leaves the queue (it may come
	// back, dead-lettered again, under another id).
	var moved struct{ Moved []cloudctl.Moved }
	if err := json.Unmarshal([]byte(cmdOut(t, "cloud", "dlq", "redrive", "--all", "--json")), &moved); err != nil {
		t.Fatal(err)
	}
	if len(moved.Moved) != 1 || moved.Moved[0].MessageID != poisoned.MessageID || moved.Moved[0].Thread != "cli-poison" || moved.Moved[0].NewMessageID == "" {
		t.Errorf("redrive --all: %+v", moved)
	}
	if err := json.Unmarshal([]byte(cmdOut(t, "cloud", "dlq", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Records {
		if d.MessageID == poisoned.MessageID || d.MessageID == outage.MessageID {
			t.Errorf("record %s is still in the dead-letter queue after its redrive", d.MessageID)
		}
	}
	if out, err := cloudRun(ctx, "cloud", "dlq", "redrive", "no-such-record"); !errors.Is(err, cloudctl.ErrNotMoved) || !strings.Contains(err.Error(), "no-such-record") {
		t.Errorf("redrive of an unknown record: %v\n%s", err, out)
	}
}

// testCloudStack: --stack reads the queues from a stack's outputs (through
// a stand-in for CloudFormation reached as AWS_ENDPOINT_URL_CLOUDFORMATION).
func testCloudStack(t *testing.T, s *cloudlocal.Stack) {
	ctx := t.Context()
	cfn := fakeCloudFormation(t, map[string]map[string]string{
		"infinity-test": {
			"MyAgentInputQueueUrl":      s.Queues.Input.URL,
			"MyAgentOutputQueueUrl":     s.Queues.Output.URL,
			"MyAgentDeadLetterQueueUrl": s.Queues.DeadLetter.URL,
			"MyAgentStackName":          "infinity-test",
			"OtherInputQueueUrl":        "https://sqs.us-east-1.amazonaws.com/000000000000/other-input.fifo",
		},
	})
	t.Setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", cfn)
	if out := cmdOut(t, "cloud", "send", "--stack", "infinity-test", "--agent", "my-agent", "cli-root", "via the stack"); !strings.Contains(out, "sent message") {
		t.Errorf("send --stack: %s", out)
	}
	waitFor(t, "user> via the stack", "cloud", "logs", "cli-root")
	if out := cmdOut(t, "cloud", "dlq", "--stack", "infinity-test", "--agent", "MyAgent"); out == "" {
		t.Errorf("dlq --stack printed nothing")
	}
	for _, tc := range []struct {
		args []string
		is   error
		msg  string
	}{
		{[]string{"cloud", "ls", "--stack", "infinity-test", "--agent", "MyAgent"}, cloudctl.ErrNotConfigured, "stack infinity-test (agent MyAgent) has no MyAgentClusterEndpoint output"},
		{[]string{"cloud", "ls", "--stack", "infinity-test"}, cloudctl.ErrNotConfigured, "several agents (MyAgent, Other): pick one with --agent"},
		{[]string{"cloud", "ls", "--stack", "infinity-test", "--agent", "Nope"}, cloudctl.ErrNotConfigured, `no agent "Nope"`},
		{[]string{"cloud", "ls", "--stack", "missing"}, cloudctl.ErrStackNotFound, "Stack with id missing does not exist"},
	} {
		_, err := cloudRun(ctx, tc.args...)
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want %v with %q", tc.args, err, tc.is, tc.msg)
		}
	}
}

// fakeCloudFormation answers DescribeStacks (the query protocol's XML) for
// the stacks given, and ValidationError for others.
func fakeCloudFormation(t *testing.T, stacks map[string]map[string]string) string {
	esc := func(s string) string {
		var b strings.Builder
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "DescribeStacks" {
			http.Error(w, "unsupported", http.StatusBadRequest)
			return
		}
		name := r.Form.Get("StackName")
		w.Header().Set("Content-Type", "text/xml")
		outs, ok := stacks[name]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ValidationError</Code>`+
				`<Message>Stack with id %s does not exist</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, esc(name))
			return
		}
		var members strings.Builder
		for k, v := range outs {
			fmt.Fprintf(&members, "<member><OutputKey>%s</OutputKey><OutputValue>%s</OutputValue></member>", esc(k), esc(v))
		}
		fmt.Fprintf(w, `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>`+
			`<StackName>%s</StackName><StackId>arn:aws:cloudformation:us-east-1:000000000000:stack/%s/1</StackId>`+
			`<CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>%s</Outputs>`+
			`</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></DescribeStacksResponse>`,
			esc(name), esc(name), members.String())
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Bad input and missing configuration: usage errors, and messages that
// name what to set.
func TestCloudCommandErrors(t *testing.T) {
	for _, k := range []string{cloud.EnvInputQueueURL, cloud.EnvOutputQueueURL, cloud.EnvDeadLetterURL, cloud.EnvDSQLEndpoint, cloud.EnvDatabaseURL} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_REGION", "us-east-1")
	for _, tc := range []struct {
		args    []string
		is      error
		message string
	}{
		{args: []string{"cloud"}, is: errUsage},
		{args: []string{"cloud", "frob"}, is: errUsage, message: `unknown command "frob"`},
		{args: []string{"cloud", "start"}, is: errUsage},
		{args: []string{"cloud", "start", "--thread", "no spaces", "hi"}, is: errUsage, message: "--thread"},
		{args: []string{"cloud", "start", "  "}, is: errUsage, message: "empty MESSAGE"},
		{args: []string{"cloud", "send", "t1"}, is: errUsage},
		{args: []string{"cloud", "send", "bad/id", "hi"}, is: errUsage},
		{args: []string{"cloud", "logs"}, is: errUsage},
		{args: []string{"cloud", "logs", "a", "b"}, is: errUsage},
		{args: []string{"cloud", "ls", "extra"}, is: errUsage},
		{args: []string{"cloud", "tree", "a", "b"}, is: errUsage},
		{args: []string{"cloud", "dlq", "extra"}, is: errUsage},
		{args: []string{"cloud", "dlq", "--limit", "0"}, is: errUsage},
		{args: []string{"cloud", "dlq", "redrive"}, is: errUsage, message: "--all"},
		{args: []string{"cloud", "dlq", "redrive", "--all", "m1"}, is: errUsage, message: "not both"},
		{args: []string{"cloud", "ls", "--agent", "A"}, is: errUsage, message: "--stack"},
		{args: []string{"cloud", "ls", "--nope"}, is: errUsage, message: "unknown flag: --nope"},
		{args: []string{"cloud", "start", "hi"}, is: cloudctl.ErrNotConfigured, message: "set INFINITY_INPUT_QUEUE_URL (or name a deployed stack with --stack NAME)"},
		{args: []string{"cloud", "send", "t1", "hi"}, is: cloudctl.ErrNotConfigured, message: "INFINITY_INPUT_QUEUE_URL"},
		{args: []string{"cloud", "start", "--follow", "hi"}, is: cloudctl.ErrNotConfigured, message: "INFINITY_DSQL_ENDPOINT (or INFINITY_DATABASE_URL"},
		{args: []string{"cloud", "logs", "t1"}, is: cloudctl.ErrNotConfigured, message: "INFINITY_DSQL_ENDPOINT"},
		{args: []string{"cloud", "ls"}, is: cloudctl.ErrNotConfigured, message: "INFINITY_DSQL_ENDPOINT"},
		{args: []string{"cloud", "tree"}, is: cloudctl.ErrNotConfigured, message: "INFINITY_DSQL_ENDPOINT"},
		{args: []string{"cloud", "dlq"}, is: cloudctl.ErrNotConfigured, message: "INFINITY_DEAD_LETTER_QUEUE_URL"},
		{args: []string{"cloud", "dlq", "redrive", "--all"}, is: cloudctl.ErrNotConfigured, message: "set INFINITY_INPUT_QUEUE_URL; set INFINITY_DEAD_LETTER_QUEUE_URL"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := cloudRun(context.Background(), tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			if tc.message != "" && !strings.Contains(err.Error()+out, tc.message) {
				t.Fatalf("error %q lacks %q", err, tc.message)
			}
		})
	}
	t.Setenv(cloud.EnvInputQueueURL, "https://sqs.us-east-1.amazonaws.com/1/in.fifo")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_PROFILE", "")
	if _, err := cloudRun(context.Background(), "cloud", "send", "t1", "hi"); !errors.Is(err, cloudctl.ErrNotConfigured) || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("no region: %v", err)
	}
}

// Every cloud command has --help, through "help" too.
func TestCloudHelp(t *testing.T) {
	for _, args := range [][]string{
		{"cloud", "--help"}, {"help", "cloud"}, {"cloud", "help"}, {"cloud", "help", "logs"},
		{"cloud", "start", "--help"}, {"cloud", "send", "--help"}, {"cloud", "logs", "--help"}, {"cloud", "ls", "--help"},
		{"cloud", "tree", "--help"}, {"cloud", "dlq", "--help"}, {"cloud", "dlq", "redrive", "--help"}, {"cloud", "migrate", "--help"},
	} {
		out, err := cloudRun(context.Background(), args...)
		if err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if !strings.Contains(out, "Usage") || !strings.Contains(out, "infinity cloud") {
			t.Errorf("%v printed no usage:\n%s", args, out)
		}
	}
	out, _ := cloudRun(context.Background(), "cloud", "logs", "--help")
	for _, want := range []string{"spawn order", "causal order", "-f, --follow", "--stack", "--agent", "--json"} {
		if !strings.Contains(out, want) {
			t.Errorf("cloud logs --help lacks %q", want)
		}
	}
}

// The research example in the cloud mode on this machine (cloud-local's
// stack: the Lambda handlers on PostgreSQL, DynamoDB Local, fauxqs and the
// Scheduler stand-in), driven by "infinity cloud".
func TestExampleCloud(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulators")
	}
	startCloudStackWith(t, example(t, "research"))
	out := cmdOut(t, "cloud", "start", "--follow", "--thread", "office", "Should we move the office?")
	if !strings.Contains(out, "Answer: all three parts are in.") || !strings.HasSuffix(out, "-- office settled: every thread of it is closed or waits for input\n") {
		t.Fatalf("cloud start --follow:\n%s", out)
	}
	if tr := cmdOut(t, "cloud", "tree", "office"); strings.Count(tr, "closed") != 3 {
		t.Fatalf("cloud tree: want three closed children:\n%s", tr)
	}
}
