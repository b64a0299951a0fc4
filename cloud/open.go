package cloud

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/agentfile"
	"github.com/infinity-runtime/infinity/examples"
	"github.com/infinity-runtime/infinity/lambda"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
	"github.com/infinity-runtime/infinity/persistence/dsql"
	"github.com/infinity-runtime/infinity/persistence/dynamodb"
	"github.com/infinity-runtime/infinity/pricing"
	"github.com/infinity-runtime/infinity/tools/httpclient"
	"github.com/infinity-runtime/infinity/tools/rap"
)

// Options are what the environment does not say: the AWS configuration
// (credentials, region, HTTP client) and, for the laptop harness, endpoint
// overrides.
type Options struct {
	// AWS is the SDK configuration, normally config.LoadDefaultConfig's.
	AWS aws.Config
	// Endpoints override the services' endpoints (empty: the SDK's own
	// resolution, which honours AWS_ENDPOINT_URL_SQS and the like).
	SQSEndpoint, DynamoDBEndpoint, SchedulerEndpoint string
	Clock                                            infinity.Clock
	Logger                                           *slog.Logger
	// Idle is how long a thread's actor stays after a slice (default 1 s;
	// a Lambda container is frozen between invocations anyway).
	Idle time.Duration
	// Observer, when set, sees every committed change (after the handler's
	// own collection of output events).
	Observer func(actors.Event)
	// Probe, when set, is the agent function's runtime's probe: its
	// metrics and traces (lambda.Telemetry's).
	Probe actors.Probe
	// Tracer, when set, traces the database statements (counting them in
	// the laptop harness).
	Tracer pgx.QueryTracer
	// Providers are the network model providers agent files may name
	// (the scripted one is always there).
	Providers agentfile.Providers
	// MCP, when set, connects an agent file's MCP servers (tools/mcp's
	// NewSource, which connects when a slice first needs the tools). Left
	// nil, agent files with MCP servers are refused: the bootstrap links
	// the MCP SDK only when built with -tags mcp.
	MCP func(servers []MCPEndpoint) ToolServers
	// Secrets reads Secrets Manager secrets (the RAP key and MCP servers'
	// headers named by the configuration); required only when the
	// configuration names one.
	Secrets SecretReader
}

// SecretReader reads a secret's string value by ARN.
type SecretReader interface {
	SecretString(ctx context.Context, arn string) (string, error)
}

// MCPEndpoint is an MCP server to connect to, with the request headers
// (credentials) its secret gave.
type MCPEndpoint struct {
	URL     string
	Headers map[string]string
	// Name names the server in logs and errors; optional.
	Name string
	// ConnectTimeout and CallTimeout are the agent file's timeout for the
	// server; zero means the MCP client's defaults.
	ConnectTimeout, CallTimeout time.Duration
}

// ToolServers are tool servers whose tools a slice asks for, and that the
// function disconnects when it stops.
type ToolServers interface {
	actors.ToolSource
	Close() error
}

// Functions is one function's handler and what it runs on.
type Functions struct {
	Config   Config
	Runtime  *actors.Runtime // the agent function only
	Agent    *lambda.Agent
	Relay    *lambda.Relay
	Receiver lambda.Receiver
	// Conversations is the agent function's conversation store.
	Conversations infinity.ConversationStore
	pool          *pgxpool.Pool
	mcp           ToolServers
}

// Handler returns the handler of the configured role, for lambda.Start.
func (f *Functions) Handler() any {
	switch f.Config.Role {
	case RoleAgent:
		return f.Agent.Handle
	case RoleRelay:
		return f.Relay.Handle
	default:
		return f.Receiver.Handle
	}
}

// Close stops the runtime, closes the database pool and disconnects the
// MCP servers.
func (f *Functions) Close(ctx context.Context) error {
	var err error
	if f.Runtime != nil {
		err = f.Runtime.Close(ctx)
	}
	if f.pool != nil {
		f.pool.Close()
	}
	if f.mcp != nil {
		err = errors.Join(err, f.mcp.Close())
	}
	return err
}

// Open builds the configured function. It does no network I/O (pools
// connect on first use), so a cold start reaches its first event quickly;
// the database schema must already exist (run Migrate at deploy time).
func Open(ctx context.Context, cfg Config, o Options) (_ *Functions, err error) {
	if o.Clock == nil {
		o.Clock = infinity.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Idle <= 0 {
		o.Idle = time.Second
	}
	if cfg.Region != "" {
		o.AWS.Region = cfg.Region
	}
	if err := resolveRAPKey(ctx, &cfg, o.Secrets); err != nil {
		return nil, err
	}
	f := &Functions{Config: cfg}
	sqsClient, err := sendClient(o)
	if err != nil {
		return nil, err
	}
	var deadLetter lambda.DeadLetterer
	var output lambda.Forwarder
	if cfg.DeadLetterURL != "" {
		deadLetter = queue{sqsClient, cfg.DeadLetterURL}
	}
	if cfg.OutputQueueURL != "" {
		output = queue{sqsClient, cfg.OutputQueueURL}
	}
	switch cfg.Role {
	case RoleRelay:
		r, err := sqs.NewRelay(sqsClient, cfg.InputQueueURL)
		if err != nil {
			return nil, fmt.Errorf("cloud: %w", err)
		}
		f.Relay = &lambda.Relay{Forward: r, DeadLetter: deadLetter, Logger: o.Logger}
		return f, nil
	case RoleReceiver:
		now, err := sqs.NewNow(sqsClient, cfg.InputQueueURL)
		if err != nil {
			return nil, fmt.Errorf("cloud: %w", err)
		}
		h := &rap.Handler{Tokens: rap.Tokens{Key: cfg.RAPKey}, Sender: now, Log: o.Logger}
		if output != nil {
			h.Views = outputViews{output}
		}
		f.Receiver = lambda.Receiver{Handler: h}
		return f, nil
	case RoleAgent:
	default:
		return nil, fmt.Errorf("cloud: role %q: %w", cfg.Role, infinity.ErrInvalid)
	}
	// Whatever fails from here releases what was made (the pool, the MCP
	// servers' connections, the runtime).
	defer func() {
		if err != nil {
			f.Close(ctx)
		}
	}()

	agent, file, prices, err := loadAgent(ctx, cfg, o.Providers)
	if err != nil {
		return nil, err
	}
	notifier, mcpSource, err := tools(ctx, cfg, o, file, &agent)
	if err != nil {
		return nil, err
	}
	f.mcp = mcpSource
	pool, dialect, err := openPool(ctx, cfg, o.AWS, o.Tracer)
	if err != nil {
		return nil, err
	}
	f.pool = pool
	conv := dsql.New(pool, dsql.WithDialect(dialect))
	f.Conversations = conv
	state := dynamodb.New(awsdynamodb.NewFromConfig(o.AWS, func(do *awsdynamodb.Options) {
		if o.DynamoDBEndpoint != "" {
			do.BaseEndpoint = aws.String(o.DynamoDBEndpoint)
		}
	}), cfg.StateTable, dynamodb.WithClock(o.Clock))
	sched, err := schedulerClient(o)
	if err != nil {
		return nil, err
	}
	sender, err := sqs.New(sqs.Config{
		SQS:              sqsClient,
		InputQueueURL:    cfg.InputQueueURL,
		RelayQueueURL:    cfg.RelayQueueURL,
		Scheduler:        sched,
		InputQueueARN:    cfg.InputQueueARN,
		SchedulerRoleARN: cfg.SchedulerRoleARN,
		ScheduleGroup:    cfg.ScheduleGroup,
		Clock:            o.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	var handler *lambda.Agent
	margin := cfg.SliceMargin
	f.Runtime, err = actors.New(actors.Config{
		StepOnly:      true,
		Conversations: conv,
		State:         state,
		Sender:        func(actors.Deliverer) infinity.InputSender { return sender },
		Agents:        []actors.Agent{agent},
		Clock:         o.Clock,
		Logger:        o.Logger,
		Idle:          o.Idle,
		Notifier:      notifier,
		Probe:         o.Probe,
		// Trees' budgets count cost by the agent file's prices.
		Prices: func(_, model string, u infinity.Usage) (float64, bool) {
			if prices == nil {
				return 0, false
			}
			return prices.Cost(model, u)
		},
		Observer: func(ev actors.Event) {
			handler.Observe(ev)
			if o.Observer != nil {
				o.Observer(ev)
			}
		},
		// The invocation's deadline, less a margin, bounds every slice: a
		// slice that reaches it commits and continues in a later one.
		Deadline: func(ctx context.Context) (time.Time, bool) {
			dl, ok := ctx.Deadline()
			return dl.Add(-margin), ok
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	handler, err = lambda.NewAgent(lambda.AgentOptions{
		Runtime: f.Runtime, Conversations: conv, Agent: agent.Name, Budget: file.TreeBudget(),
		DeadLetter: deadLetter, MaxReceiveCount: cfg.MaxReceiveCount, Output: output, Clock: o.Clock, Logger: o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	f.Agent = handler
	return f, nil
}

// sendClient is the functions' SQS client (SendMessage) and
// schedulerClient the agent function's Scheduler client (CreateSchedule),
// both signed with the function's credentials.
func sendClient(o Options) (*sqs.SendClient, error) {
	return awsClient(o.AWS, "sqs", "SQS", o.SQSEndpoint, sqs.NewSendClient)
}

func schedulerClient(o Options) (*sqs.SchedulerClient, error) {
	return awsClient(o.AWS, "scheduler", "Scheduler", o.SchedulerEndpoint, sqs.NewSchedulerClient)
}

// loadAgent reads the agent file, or the bundled demo agent when none is
// configured, adds the configuration's tool servers and picks its model.
func loadAgent(ctx context.Context, cfg Config, ps agentfile.Providers) (actors.Agent, *agentfile.File, *pricing.Table, error) {
	var file *agentfile.File
	var err error
	path := cfg.AgentFile
	if path == "" {
		file, err = agentfile.ParseDetached("demo.yaml", examples.Demo())
	} else {
		file, err = agentfile.Load(path)
	}
	if err != nil {
		return actors.Agent{}, nil, nil, fmt.Errorf("cloud: agent file: %w", err)
	}
	// Every model of the file (model and models), one provider per id;
	// threads run on the default unless their ThreadInfo.Model names
	// another.
	reg, err := file.Registry(ctx, ps)
	if err != nil {
		return actors.Agent{}, nil, nil, fmt.Errorf("cloud: agent file: %w", err)
	}
	if cfg.Model != "" {
		if !reg.Allows(cfg.Model) {
			return actors.Agent{}, nil, nil, fmt.Errorf("cloud: %s %q is not one of the agent file's models (%s): %w",
				EnvModel, cfg.Model, strings.Join(reg.Models, ", "), infinity.ErrInvalid)
		}
		provider, id, _ := strings.Cut(cfg.Model, "/")
		reg.Default = infinity.ModelRef{Provider: provider, Model: id}
	}
	file.Tools.RAP = append(file.Tools.RAP, cfg.Tools.RAP...)
	a := file.Agent(nil)
	reg.Configure(&a)
	return a, file, reg.Prices, nil
}

// tools gives the agent its tool servers and returns the notifier of its
// RAP servers (nil without any) and its MCP servers (nil without any). RAP
// toolsets are discovered per session through SigV4-signed requests, so
// IAM-auth Function URLs work. MCP servers are connected by o.MCP's source
// when a slice first needs their tools, not at cold start, and kept while
// the container lives.
func tools(ctx context.Context, cfg Config, o Options, file *agentfile.File, a *actors.Agent) (actors.Notifier, ToolServers, error) {
	var servers ToolServers
	if err := file.RefuseDaemonOnly(); err != nil {
		return nil, nil, fmt.Errorf("cloud: %w", err)
	}
	if len(file.Tools.MCP)+len(cfg.Tools.MCP) > 0 {
		if o.MCP == nil {
			return nil, nil, fmt.Errorf("cloud: agent file %s or %s: MCP servers: this bootstrap was built without MCP (build it with -tags mcp): %w", file.Path(), EnvTools, infinity.ErrNotImplemented)
		}
		endpoints, err := mcpEndpoints(ctx, file.Tools.MCPServers, cfg.Tools.MCP, o.Secrets)
		if err != nil {
			return nil, nil, err
		}
		servers = o.MCP(endpoints)
	}
	notifier, err := rapTools(cfg, o, file, a)
	if err != nil {
		return nil, nil, err
	}
	if servers != nil {
		a.Toolsets = actors.ToolSources(a.Toolsets, servers)
	}
	return notifier, servers, nil
}

// rapTools gives the agent its RAP toolsets and returns the notifier of
// its servers (nil without any). The agent file's entries keep their
// timeouts (local servers were refused before: tools calls
// file.RefuseDaemonOnly).
func rapTools(cfg Config, o Options, file *agentfile.File, a *actors.Agent) (actors.Notifier, error) {
	if len(file.Tools.RAP) == 0 {
		return nil, nil
	}
	if cfg.RAPKey == nil || cfg.RAPCallbackURL == "" {
		return nil, fmt.Errorf("cloud: agent file %s has RAP tools: set %s and %s (the receiver function's URL): %w", file.Path(), EnvRAPKey, EnvRAPCallbackURL, infinity.ErrInvalid)
	}
	// The file's entries, with their settings, then the URLs the
	// configuration adds (file.Tools.RAP holds both).
	var entries []rap.Server
	fromFile := map[string]bool{}
	for _, s := range file.Tools.RAPServers {
		entries = append(entries, rap.Server{URL: s.URL, Name: s.Name, ConnectTimeout: s.Timeout.ConnectDuration(), CallTimeout: s.Timeout.CallDuration()})
		fromFile[s.URL] = true
	}
	for _, u := range file.Tools.RAP {
		if !fromFile[u] {
			entries = append(entries, rap.Server{URL: u})
		}
	}
	client, err := httpclient.NewSigV4(cfg.Region, o.AWS.Credentials)
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	loader := rap.NewLoader(rap.Config{
		Entries: entries, Client: client, CallbackBase: cfg.RAPCallbackURL,
		Tokens: rap.Tokens{Key: cfg.RAPKey}, Reserved: actors.ReservedToolNames(), Log: o.Logger,
	})
	a.Toolsets = loader
	// Synchronous: nothing may be left on a goroutine when the handler
	// returns (Lambda freezes the container).
	return &rap.Notifier{Loader: loader, Client: client, Log: o.Logger, Synchronous: true}, nil
}

// outputViews sends RAP view updates to the output queue (no client is
// connected to a Lambda function).
type outputViews struct{ out lambda.Forwarder }

func (v outputViews) View(ctx context.Context, id infinity.ThreadID, viewType string, content json.RawMessage) error {
	b, err := json.Marshal(map[string]any{"thread_id": id, "view_type": viewType, "content": content})
	if err != nil {
		return fmt.Errorf("view for %s: %w", id, err)
	}
	return v.out.Forward(ctx, string(b))
}

// openPool makes the database pool: IAM-token auth over TLS for DSQL, or a
// plain URL for PostgreSQL.
func openPool(ctx context.Context, cfg Config, awsCfg aws.Config, tracer pgx.QueryTracer) (*pgxpool.Pool, dsql.Dialect, error) {
	if cfg.DatabaseURL != "" {
		pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
		if err != nil {
			return nil, 0, fmt.Errorf("cloud: %s: %w", EnvDatabaseURL, errors.Join(infinity.ErrInvalid, err))
		}
		pc.ConnConfig.Tracer = tracer
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return nil, 0, fmt.Errorf("cloud: database: %w", err)
		}
		return pool, dsql.PostgreSQL, nil
	}
	pc, err := pgxpool.ParseConfig(dsql.ConnString(cfg.DSQLEndpoint, cfg.DSQLUser))
	if err != nil {
		return nil, 0, fmt.Errorf("cloud: %s: %w", EnvDSQLEndpoint, errors.Join(infinity.ErrInvalid, err))
	}
	pc.ConnConfig.Tracer = tracer
	gen := &dsql.TokenGenerator{Endpoint: cfg.DSQLEndpoint, Region: awsCfg.Region, Credentials: awsCfg.Credentials, Admin: cfg.DSQLUser == "admin"}
	pc.BeforeConnect = gen.BeforeConnect
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, 0, fmt.Errorf("cloud: dsql: %w", err)
	}
	return pool, dsql.DSQL, nil
}

// queue sends to one SQS queue: display events to the output queue, and
// records that cannot succeed to a dead-letter queue, with why as message
// attributes (lambda.DeadRecord.Attributes); on a FIFO dead-letter queue a
// record keeps its message group, deduplicated by its SQS message id.
type queue struct {
	client sqs.SQSAPI
	url    string
}

func (q queue) DeadLetter(ctx context.Context, r lambda.DeadRecord) error {
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(r.Body),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{}}
	for k, v := range r.Attributes() {
		in.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	if strings.HasSuffix(q.url, ".fifo") {
		group := string(r.Thread)
		if group == "" {
			group = "unknown"
		}
		in.MessageGroupId, in.MessageDeduplicationId = aws.String(group), aws.String("dead-"+r.MessageID)
	}
	if _, err := q.client.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("dead-letter %s to %s: %w", r.MessageID, q.url, err)
	}
	return nil
}

func (q queue) Forward(ctx context.Context, body string) error {
	if _, err := q.client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(body)}); err != nil {
		return fmt.Errorf("send to %s: %w", q.url, err)
	}
	return nil
}

// MigrateFromEnv creates or updates the conversation store's schema with
// the database settings of the environment (AWS_REGION and
// INFINITY_DSQL_ENDPOINT, or INFINITY_DATABASE_URL): nothing else of a
// function's configuration is needed.
func MigrateFromEnv(ctx context.Context, getenv func(string) string, awsCfg aws.Config) error {
	cfg, err := LoadConfig(func(k string) string {
		if k == EnvRole {
			return string(RoleMigrate)
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	return Migrate(ctx, cfg, awsCfg)
}

// Migrate creates or updates the conversation store's schema in cfg's
// database; it is idempotent.
func Migrate(ctx context.Context, cfg Config, awsCfg aws.Config) error {
	if cfg.Region != "" {
		awsCfg.Region = cfg.Region
	}
	pool, dialect, err := openPool(ctx, cfg, awsCfg, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := dsql.Migrate(ctx, pool, dialect); err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	return nil
}

// resolveRAPKey reads the RAP key from its secret when the configuration
// names one instead of the key.
func resolveRAPKey(ctx context.Context, cfg *Config, secrets SecretReader) error {
	if cfg.RAPKey != nil || cfg.RAPKeySecretARN == "" {
		return nil
	}
	v, err := readSecret(ctx, secrets, cfg.RAPKeySecretARN, EnvRAPKeySecretARN)
	if err != nil {
		return err
	}
	key, err := hex.DecodeString(strings.TrimSpace(v))
	if err != nil || len(key) < 16 {
		return fmt.Errorf("cloud: %s: the secret %s is not hex of 16 bytes or more: %w", EnvRAPKeySecretARN, cfg.RAPKeySecretARN, infinity.ErrInvalid)
	}
	cfg.RAPKey = key
	return nil
}

// mcpEndpoints lists the agent file's MCP servers (their headers from the
// function's environment, as the file says) and the configuration's, the
// latter with the headers their secrets hold.
func mcpEndpoints(ctx context.Context, fromFile []agentfile.MCPServer, fromEnv []MCPServer, secrets SecretReader) ([]MCPEndpoint, error) {
	out := make([]MCPEndpoint, 0, len(fromFile)+len(fromEnv))
	for _, s := range fromFile {
		h, err := s.ResolveHeaders()
		if err != nil {
			return nil, fmt.Errorf("cloud: %w", err)
		}
		out = append(out, MCPEndpoint{URL: s.URL, Headers: h, Name: s.Name,
			ConnectTimeout: s.Timeout.ConnectDuration(), CallTimeout: s.Timeout.CallDuration()})
	}
	for _, m := range fromEnv {
		e := MCPEndpoint{URL: m.URL}
		if m.HeadersSecretARN != "" {
			v, err := readSecret(ctx, secrets, m.HeadersSecretARN, EnvTools)
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal([]byte(v), &e.Headers); err != nil {
				// The secret's value is never quoted: it holds credentials.
				return nil, fmt.Errorf("cloud: %s: the headers secret %s of MCP server %s is not a JSON object of strings: %w", EnvTools, m.HeadersSecretARN, m.URL, infinity.ErrInvalid)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func readSecret(ctx context.Context, secrets SecretReader, arn, setting string) (string, error) {
	if secrets == nil {
		return "", fmt.Errorf("cloud: %s names the secret %s, but this program reads no secrets: %w", setting, arn, infinity.ErrNotImplemented)
	}
	v, err := secrets.SecretString(ctx, arn)
	if err != nil {
		return "", fmt.Errorf("cloud: %s: %w", setting, err)
	}
	return v, nil
}
