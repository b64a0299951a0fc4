package cloudctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/mailbox/sqs"
	"github.com/infinity-runtime/infinity/persistence/dsql"
)

// SQSAPI is the part of the SQS client the commands use.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *awssqs.SendMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error)
	ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *awssqs.DeleteMessageBatchInput, optFns ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *awssqs.ChangeMessageVisibilityBatchInput, optFns ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *awssqs.GetQueueAttributesInput, optFns ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
}

// Client talks to one deployment. Open builds it from a Config; tests may
// fill the fields themselves.
type Client struct {
	Config Config
	// SQS reaches the queues.
	SQS SQSAPI
	// Conversations is the conversation store (nil without a database).
	Conversations infinity.ConversationStore
	// List returns root threads, or every thread with all, oldest first:
	// the conversation store has no such query, so Open reads the
	// threads table itself.
	List func(ctx context.Context, all bool) ([]infinity.ThreadInfo, error)
	// Now is the store's clock: the reference against which items' times
	// are held back while later commits may still land (see Logs).
	Now func(ctx context.Context) (time.Time, error)

	pool *pgxpool.Pool
}

// Open builds a client; it does no network I/O (the pool connects on first
// use). awsCfg is the SDK configuration (config.LoadDefaultConfig, which
// honours AWS_ENDPOINT_URL_SQS and the other AWS_ENDPOINT_URL_*
// variables); it must have a region.
func Open(ctx context.Context, cfg Config, awsCfg aws.Config) (*Client, error) {
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("no AWS region: set AWS_REGION (or a profile's region): %w", ErrNotConfigured)
	}
	c := &Client{Config: cfg, SQS: awssqs.NewFromConfig(awsCfg)}
	if cfg.DSQLEndpoint == "" && cfg.DatabaseURL == "" {
		return c, nil
	}
	if err := cfg.Require(NeedDatabase); err != nil {
		return nil, err
	}
	var pc *pgxpool.Config
	var err error
	dialect := dsql.PostgreSQL
	if cfg.DatabaseURL != "" {
		if pc, err = pgxpool.ParseConfig(cfg.DatabaseURL); err != nil {
			return nil, fmt.Errorf("database URL: %w", errors.Join(ErrNotConfigured, err))
		}
	} else {
		dialect = dsql.DSQL
		if pc, err = pgxpool.ParseConfig(dsql.ConnString(cfg.DSQLEndpoint, cfg.DSQLUser)); err != nil {
			return nil, fmt.Errorf("dsql endpoint %q: %w", cfg.DSQLEndpoint, errors.Join(ErrNotConfigured, err))
		}
		gen := &dsql.TokenGenerator{Endpoint: cfg.DSQLEndpoint, Region: awsCfg.Region, Credentials: awsCfg.Credentials, Admin: cfg.DSQLUser == "admin"}
		pc.BeforeConnect = gen.BeforeConnect
	}
	pc.MaxConns = 4
	if c.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	c.Conversations = dsql.New(c.pool, dsql.WithDialect(dialect))
	c.List = c.listThreads
	c.Now = c.dbNow
	return c, nil
}

// Close closes the database pool.
func (c *Client) Close() {
	if c.pool != nil {
		c.pool.Close()
	}
}

// threadCols are the columns of the threads table listThreads reads (see
// persistence/dsql's schema).
const threadCols = `id, parent, root, spawn_order, spawn_call_id, kind, agent, closed, created, model, compacted`

// listThreads reads the threads table: roots use its parent index.
func (c *Client) listThreads(ctx context.Context, all bool) ([]infinity.ThreadInfo, error) {
	q := `SELECT ` + threadCols + ` FROM threads`
	if !all {
		q += ` WHERE parent = ''`
	}
	q += ` ORDER BY created, id`
	rows, err := c.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (infinity.ThreadInfo, error) {
		var t infinity.ThreadInfo
		var id, parent, root string
		var order int64
		var kind int16
		var model *string
		var compacted *bool
		err := r.Scan(&id, &parent, &root, &order, &t.SpawnCallID, &kind, &t.Agent, &t.Closed, &t.Created, &model, &compacted)
		t.ID, t.Parent, t.Root = infinity.ThreadID(id), infinity.ThreadID(parent), infinity.ThreadID(root)
		t.SpawnOrder, t.Kind = int(order), infinity.ThreadKind(kind)
		if model != nil {
			t.Model = *model
		}
		t.Compacted = compacted != nil && *compacted
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	return out, nil
}

// dbNow reads the database's clock. DSQL's and Lambda's clocks are both
// synchronised by AWS; a laptop's may not be.
func (c *Client) dbNow(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := c.pool.QueryRow(ctx, `SELECT now()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("database clock: %w", err)
	}
	return t, nil
}

// needStore reports a missing database configuration.
func (c *Client) needStore() error {
	if c.Conversations == nil || c.List == nil || c.Now == nil {
		if err := c.Config.Require(NeedDatabase); err != nil {
			return err
		}
		return fmt.Errorf("no conversation store: %w", ErrNotConfigured)
	}
	return nil
}

// Sent is a message put on the input queue.
type Sent struct {
	Thread  infinity.ThreadID  `json:"thread"`
	Message infinity.MessageID `json:"message"`
}

// Send puts user text for thread on the input queue, as the reference
// runtime's clients do: the message group is the thread and the
// deduplication id is derived from the thread and the message id, so a
// resend with the same id (within SQS's five minutes, and after them
// through the thread's own dedup) is applied once. An empty id gets a new
// random one. User text to a thread that does not exist starts a root
// thread of that id.
func (c *Client) Send(ctx context.Context, thread infinity.ThreadID, text string, id infinity.MessageID) (Sent, error) {
	if err := c.Config.Require(NeedInput); err != nil {
		return Sent{}, err
	}
	if !infinity.ValidThreadID(thread) {
		return Sent{}, fmt.Errorf("thread %q: %s: %w", thread, infinity.ThreadIDRule, infinity.ErrInvalid)
	}
	if strings.TrimSpace(text) == "" {
		return Sent{}, fmt.Errorf("send to %s: empty message: %w", thread, infinity.ErrInvalid)
	}
	if id == "" {
		id = infinity.NewMessageID()
	}
	if len(text) > MaxText {
		return Sent{}, fmt.Errorf("send to %s: the message has %d bytes; SQS takes at most %d in a body: %w", thread, len(text), MaxText, infinity.ErrInvalid)
	}
	now, err := sqs.NewNow(c.SQS, c.Config.InputQueueURL)
	if err != nil {
		return Sent{}, fmt.Errorf("input queue: %w", err)
	}
	if err := now.Send(ctx, infinity.InputMessage{ID: id, GroupID: thread, Content: infinity.TextContent(text)}, time.Time{}); err != nil {
		return Sent{}, err
	}
	return Sent{Thread: thread, Message: id}, nil
}

// MaxText is the longest user text Send takes: SQS's 256 KiB body, less
// room for the message's JSON around it.
const MaxText = 256<<10 - 4<<10

// Thread returns a thread's info from the store.
func (c *Client) Thread(ctx context.Context, id infinity.ThreadID) (infinity.ThreadInfo, error) {
	if err := c.needStore(); err != nil {
		return infinity.ThreadInfo{}, err
	}
	return c.Conversations.Thread(ctx, id)
}
