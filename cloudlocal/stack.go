package cloudlocal

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/cloud"
	"github.com/infinity-runtime/infinity/cloud/cloudmcp"
	"github.com/infinity-runtime/infinity/internal/emulators"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
	"github.com/infinity-runtime/infinity/mailbox/sqs/schedulerlocal"
	"github.com/infinity-runtime/infinity/persistence/dsql"
	"github.com/infinity-runtime/infinity/persistence/dynamodb"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// Region is the region the local stack pretends to be in.
const Region = "us-east-1"

// Options configure a local stack.
type Options struct {
	// Endpoints of servers already running; each one left empty is started
	// (and stopped by Close).
	PostgresURL, DynamoDBEndpoint, SQSEndpoint string
	// Install lets Start install what the emulators it starts need and is
	// missing (apt-get as root or through sudo, npm). Without it Start
	// installs nothing and, when something is missing, fails with an error
	// matching emulators.ErrNotInstalled that lists it, ending with
	// InstallHint. Progress, when set, is told what is installed before it
	// is.
	Install     bool
	InstallHint string
	Progress    io.Writer
	// AgentFile is the agent new root threads run (empty: the bundled demo).
	AgentFile string
	// Prefix names the queues, the table and the database schema (default
	// a random "inf<hex>").
	Prefix string
	// TimeScale speeds up the Scheduler stand-in: a schedule due in d fires
	// after d*TimeScale (default 1; the tests use 0.001 so that a 20-minute
	// sleep takes the > 900 s path and still ends in about a second).
	TimeScale float64
	// Visibility is the queues' visibility timeout (default 30 s); a failed
	// record comes back after it. FunctionTimeout is each invocation's
	// deadline (default 20 s). Concurrency is how many invocations of each
	// function run at once (default 2).
	Visibility      time.Duration
	FunctionTimeout time.Duration
	// MaxReceiveCount is the input and relay queues' redrive
	// maxReceiveCount (default sqs.DefaultMaxReceiveCount, as deployed).
	MaxReceiveCount int
	Concurrency     int
	// SliceMargin is the functions' INFINITY_SLICE_MARGIN (default 2 s).
	SliceMargin time.Duration
	Logger      *slog.Logger
	// Transport, when set, wraps the HTTP transport of every AWS client of
	// the functions (counting calls, injecting faults).
	Transport func(http.RoundTripper) http.RoundTripper
	// Tracer, when set, traces the agent function's database statements.
	Tracer pgx.QueryTracer
	// OnInvoke, when set, is told about every agent invocation.
	OnInvoke func(Invocation)
}

// Stack is a running local cloud: the emulators, the resources, the two
// SQS-triggered functions and their pollers, and the Scheduler stand-in.
type Stack struct {
	Queues    sqs.Queues
	Table     string
	Schema    string
	Scheduler *schedulerlocal.Server
	// Env is the functions' environment, as the CDK construct sets it.
	Env map[string]string
	// Agent, Relay and Receiver are the functions.
	Agent, Relay, Receiver *cloud.Functions
	// ReceiverURL is the receiver's stand-in Function URL, under which
	// tool servers call back.
	ReceiverURL string
	// Conversations reads the stack's histories (the agent's own store).
	Conversations infinity.ConversationStore
	// SQS is a client of the SQS emulator.
	SQS *awssqs.Client
	// Endpoints of the emulators.
	PostgresURL, DynamoDBEndpoint, SQSEndpoint, SchedulerEndpoint string

	sender  *sqs.Sender
	pool    *pgxpool.Pool
	servers []*emulators.Server
	httpSrv *http.Server
	urlSrv  *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Start brings the stack up. Close tears it down.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Prefix == "" {
		o.Prefix = fmt.Sprintf("inf%08x", rand.Uint32())
	}
	if o.TimeScale <= 0 {
		o.TimeScale = 1
	}
	if o.Visibility <= 0 {
		o.Visibility = 30 * time.Second
	}
	if o.FunctionTimeout <= 0 {
		o.FunctionTimeout = 20 * time.Second
	}
	if o.SliceMargin <= 0 {
		o.SliceMargin = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Stack{Table: o.Prefix + "-state", Schema: o.Prefix}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.startEmulators(ctx, &o); err != nil {
		return nil, err
	}

	plain := aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	s.SQS = awssqs.NewFromConfig(plain, func(so *awssqs.Options) { so.BaseEndpoint = aws.String(s.SQSEndpoint) })
	if o.MaxReceiveCount <= 0 {
		o.MaxReceiveCount = sqs.DefaultMaxReceiveCount
	}
	if s.Queues, err = sqs.CreateQueues(ctx, s.SQS, o.Prefix, sqs.WithVisibilityTimeout(o.Visibility), sqs.WithMaxReceiveCount(o.MaxReceiveCount)); err != nil {
		return nil, fmt.Errorf("cloudlocal: %w", err)
	}
	ddb := awsdynamodb.NewFromConfig(plain, func(do *awsdynamodb.Options) {
		do.BaseEndpoint = aws.String(s.DynamoDBEndpoint)
		do.DisableValidateResponseChecksum = true
	})
	if err := dynamodb.CreateTable(ctx, ddb, s.Table); err != nil {
		return nil, fmt.Errorf("cloudlocal: %w", err)
	}
	dbURL, err := s.createSchema(ctx)
	if err != nil {
		return nil, err
	}

	// The Scheduler stand-in, reached like the real service through its
	// endpoint, fires schedules into the SQS emulator.
	s.Scheduler = schedulerlocal.New(s.SQS, schedulerlocal.WithTimeScale(o.TimeScale), schedulerlocal.WithLogger(o.Logger))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cloudlocal: scheduler stand-in: %w", err)
	}
	s.httpSrv = &http.Server{Handler: s.Scheduler, ReadHeaderTimeout: 10 * time.Second}
	go s.httpSrv.Serve(ln)
	s.SchedulerEndpoint = "http://" + ln.Addr().String()
	urlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cloudlocal: function URL: %w", err)
	}
	s.ReceiverURL = "http://" + urlLn.Addr().String()

	s.Env = map[string]string{
		cloud.EnvRegion:           Region,
		cloud.EnvInputQueueURL:    s.Queues.Input.URL,
		cloud.EnvInputQueueARN:    s.Queues.Input.ARN,
		cloud.EnvRelayQueueURL:    s.Queues.Relay.URL,
		cloud.EnvOutputQueueURL:   s.Queues.Output.URL,
		cloud.EnvDeadLetterURL:    s.Queues.DeadLetter.URL,
		cloud.EnvMaxReceiveCount:  strconv.Itoa(s.Queues.MaxReceiveCount),
		cloud.EnvSchedulerRoleARN: "arn:aws:iam::000000000000:role/" + o.Prefix + "-scheduler",
		cloud.EnvScheduleGroup:    o.Prefix,
		cloud.EnvStateTable:       s.Table,
		cloud.EnvDatabaseURL:      dbURL,
		cloud.EnvAgentFile:        o.AgentFile,
		cloud.EnvSliceMargin:      o.SliceMargin.String(),
		cloud.EnvRAPKey:           hex.EncodeToString(rap.NewKey()),
		cloud.EnvRAPCallbackURL:   s.ReceiverURL,
	}
	fnAWS := plain
	if o.Transport != nil {
		fnAWS.HTTPClient = &http.Client{Transport: o.Transport(http.DefaultTransport)}
	}
	copts := cloud.Options{AWS: fnAWS, SQSEndpoint: s.SQSEndpoint, DynamoDBEndpoint: s.DynamoDBEndpoint,
		SchedulerEndpoint: s.SchedulerEndpoint, Logger: o.Logger, Tracer: o.Tracer,
		// As the bootstrap built with -tags mcp connects them.
		MCP: cloudmcp.Source}
	if s.Agent, err = s.open(ctx, cloud.RoleAgent, copts); err != nil {
		return nil, err
	}
	if s.Relay, err = s.open(ctx, cloud.RoleRelay, copts); err != nil {
		return nil, err
	}
	if s.Receiver, err = s.open(ctx, cloud.RoleReceiver, copts); err != nil {
		return nil, err
	}
	s.urlSrv = &http.Server{Handler: functionURL{h: lambda.NewHandler(s.Receiver.Handler()), timeout: o.FunctionTimeout, maxBody: 6 << 20},
		ReadHeaderTimeout: 10 * time.Second}
	go s.urlSrv.Serve(urlLn)
	s.Conversations = s.Agent.Conversations

	if s.sender, err = sqs.New(sqs.Config{
		SQS: s.SQS, InputQueueURL: s.Queues.Input.URL, RelayQueueURL: s.Queues.Relay.URL,
		Scheduler: noScheduler{}, InputQueueARN: s.Queues.Input.ARN,
		SchedulerRoleARN: s.Env[cloud.EnvSchedulerRoleARN], ScheduleGroup: o.Prefix,
	}); err != nil {
		return nil, fmt.Errorf("cloudlocal: %w", err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, p := range []*Poller{
		{QueueURL: s.Queues.Input.URL, QueueARN: s.Queues.Input.ARN, Handler: s.Agent.Handler(), OnInvoke: o.OnInvoke},
		{QueueURL: s.Queues.Relay.URL, QueueARN: s.Queues.Relay.ARN, Handler: s.Relay.Handler()},
	} {
		p.Client, p.Region, p.Concurrency, p.Timeout, p.Logger = s.SQS, Region, o.Concurrency, o.FunctionTimeout, o.Logger
		s.wg.Go(func() { p.Run(runCtx) })
	}
	return s, nil
}

// open builds one function from the stack's environment, as its bootstrap
// would from the process environment.
func (s *Stack) open(ctx context.Context, role cloud.Role, o cloud.Options) (*cloud.Functions, error) {
	env := map[string]string{cloud.EnvRole: string(role)}
	for k, v := range s.Env {
		env[k] = v
	}
	if role == cloud.RoleRelay {
		// As the construct deploys it: the relay queue has its own.
		env[cloud.EnvDeadLetterURL] = s.Queues.RelayDeadLetter.URL
	}
	cfg, err := cloud.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		return nil, fmt.Errorf("cloudlocal: %s function: %w", role, err)
	}
	f, err := cloud.Open(ctx, cfg, o)
	if err != nil {
		return nil, fmt.Errorf("cloudlocal: %s function: %w", role, err)
	}
	return f, nil
}

// startEmulators starts the servers Options did not name.
func (s *Stack) startEmulators(ctx context.Context, o *Options) error {
	s.PostgresURL, s.DynamoDBEndpoint, s.SQSEndpoint = o.PostgresURL, o.DynamoDBEndpoint, o.SQSEndpoint
	var kinds []emulators.Kind
	var dsts []*string
	for _, e := range []struct {
		kind emulators.Kind
		dst  *string
	}{{emulators.Postgres, &s.PostgresURL}, {emulators.DynamoDB, &s.DynamoDBEndpoint}, {emulators.SQS, &s.SQSEndpoint}} {
		if *e.dst == "" {
			kinds, dsts = append(kinds, e.kind), append(dsts, e.dst)
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	servers, err := emulators.Start(ctx, emulators.Options{Install: o.Install, Progress: o.Progress, InstallHint: o.InstallHint}, kinds...)
	if err != nil {
		return fmt.Errorf("cloudlocal: %w", err)
	}
	s.servers = servers
	for i, srv := range servers {
		*dsts[i] = srv.Endpoint
	}
	return nil
}

// createSchema makes the stack's own database schema, migrates it, and
// returns the URL the agent function connects with.
func (s *Stack) createSchema(ctx context.Context) (string, error) {
	u, err := url.Parse(s.PostgresURL)
	if err != nil {
		return "", fmt.Errorf("cloudlocal: postgres URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, s.PostgresURL)
	if err != nil {
		return "", fmt.Errorf("cloudlocal: postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.Schema}.Sanitize()); err != nil {
		return "", fmt.Errorf("cloudlocal: create schema: %w", err)
	}
	q := u.Query()
	q.Set("search_path", s.Schema)
	u.RawQuery = q.Encode()
	dbURL := u.String()
	if s.pool, err = pgxpool.New(ctx, dbURL); err != nil {
		return "", fmt.Errorf("cloudlocal: postgres: %w", err)
	}
	if err := dsql.Migrate(ctx, s.pool, dsql.PostgreSQL); err != nil {
		return "", fmt.Errorf("cloudlocal: %w", err)
	}
	return dbURL, nil
}

// Send puts user text on the input queue as any client would (the
// reference runtime's body, with an id): the thread is created by its
// first message when it does not exist.
func (s *Stack) Send(ctx context.Context, thread infinity.ThreadID, text string) (infinity.MessageID, error) {
	id := infinity.MessageID("user-" + strconv.FormatUint(rand.Uint64(), 36))
	msg := infinity.InputMessage{ID: id, GroupID: thread, Content: infinity.TextContent(text)}
	if err := s.sender.Send(ctx, msg, time.Time{}); err != nil {
		return "", err
	}
	return id, nil
}

// Close stops the pollers, the functions and the servers the stack
// started.
func (s *Stack) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, f := range []*cloud.Functions{s.Agent, s.Relay, s.Receiver} {
		if f != nil {
			f.Close(ctx)
		}
	}
	if s.Scheduler != nil {
		s.Scheduler.Stop()
	}
	if s.httpSrv != nil {
		s.httpSrv.Close()
	}
	if s.urlSrv != nil {
		s.urlSrv.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	for _, srv := range s.servers {
		srv.Stop()
	}
}

// noScheduler refuses schedules: the stack's own Send delivers now.
type noScheduler struct{}

func (noScheduler) CreateSchedule(context.Context, *scheduler.CreateScheduleInput, ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	return nil, fmt.Errorf("cloudlocal: the stack's client sends no delayed messages: %w", infinity.ErrInvalid)
}
