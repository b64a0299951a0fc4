package cloudctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/lambda"
)

// The string message attributes of a record the agent function moved to
// the dead-letter queue itself (records SQS's redrive policy moved have
// none).
const (
	AttrError        = lambda.AttrError
	AttrThread       = lambda.AttrThread
	AttrMessageID    = lambda.AttrMessageID // the record's SQS message id on the input queue
	AttrReceiveCount = lambda.AttrReceiveCount
)

// ErrNotMoved reports records a redrive could not move; the error's
// message says which and why.
var ErrNotMoved = errors.New("not moved")

// DeadLetter is one record of the input queue's dead-letter queue.
type DeadLetter struct {
	// MessageID is the record's id in the dead-letter queue.
	MessageID string `json:"message_id"`
	// Thread is the thread it was for (from infinity.thread, the FIFO
	// message group, or the body's group_id; empty when none says).
	Thread infinity.ThreadID `json:"thread,omitempty"`
	Body   string            `json:"body"`
	// Error, OriginalID and ReceiveCount are the infinity.* attributes.
	Error        string `json:"error,omitempty"`
	OriginalID   string `json:"original_message_id,omitempty"`
	ReceiveCount int    `json:"receive_count,omitempty"`
	// Attributes are every string message attribute of the record.
	Attributes map[string]string `json:"attributes,omitempty"`
	// GroupID is its message group in a FIFO dead-letter queue.
	GroupID string `json:"group_id,omitempty"`
	// SentAt is when SQS took it (for a record the redrive policy moved,
	// when it was first sent to the input queue).
	SentAt time.Time `json:"sent_at,omitzero"`
	// SQSReceiveCount is SQS's ApproximateReceiveCount of the record, which
	// counts the receives that listed it too.
	SQSReceiveCount int `json:"sqs_receive_count,omitempty"`

	receipt *string
}

// DeadLetters is what a listing found.
type DeadLetters struct {
	Records []DeadLetter `json:"records"`
	// Unseen is how many more records the queue said it held: in flight
	// elsewhere, past the limit, or, in a FIFO queue, behind the ones
	// listed in their thread's message group (SQS shows a group's later
	// records only once its earlier ones are gone).
	Unseen int  `json:"unseen,omitempty"`
	FIFO   bool `json:"fifo"`
}

// holdFor is how long a listing keeps the records it received invisible
// (it makes them visible again when it is done, or SQS does after this).
const holdFor = 60 * time.Second

// ListDeadLetters lists up to limit records of the input queue's
// dead-letter queue without consuming them: it receives them (keeping them
// invisible meanwhile, so that each is seen once) and then makes them
// visible again.
func (c *Client) ListDeadLetters(ctx context.Context, limit int) (DeadLetters, error) {
	if err := c.Config.Require(NeedDeadLetter); err != nil {
		return DeadLetters{}, err
	}
	q := c.Config.DeadLetterQueueURL
	total, err := c.queueSize(ctx, q)
	if err != nil {
		return DeadLetters{}, err
	}
	recs, err := c.receiveAll(ctx, q, limit)
	c.release(ctx, q, recs)
	if err != nil {
		return DeadLetters{}, err
	}
	return DeadLetters{Records: recs, Unseen: max(total-len(recs), 0), FIFO: isFIFO(q)}, nil
}

// Moved is a record a redrive sent back to the input queue.
type Moved struct {
	DeadLetter
	// NewMessageID is its id on the input queue.
	NewMessageID string `json:"new_message_id"`
}

// Redrive sends records of the dead-letter queue back to the input queue,
// each on its thread's message group, and deletes them from the
// dead-letter queue: the records named by ids (dead-letter or original
// message ids), or every one when ids is empty. A record that comes back
// to the dead-letter queue while this runs is not sent again. Records it
// could not move (unknown thread, not found) are reported in an error
// wrapping ErrNotMoved, after what was moved.
func (c *Client) Redrive(ctx context.Context, ids []string) ([]Moved, error) {
	if err := c.Config.Require(NeedDeadLetter | NeedInput); err != nil {
		return nil, err
	}
	q := c.Config.DeadLetterQueueURL
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	found := map[string]bool{}
	sentBodies := map[string]bool{}
	var moved []Moved
	var problems []string
	var kept []DeadLetter
	// The loop ends on an empty receive, or once every id is found:
	// every record taken stays invisible until the end (moved ones are
	// deleted).
	all := len(want) == 0
	err := c.receive(ctx, q, func(d DeadLetter) (bool, error) {
		hit := all
		for _, k := range []string{d.MessageID, d.OriginalID} {
			if k != "" && want[k] {
				found[k], hit = true, true
			}
		}
		switch {
		case !hit:
			kept = append(kept, d)
		case sentBodies[d.Body]:
			// It came back while this runs (or repeats one just moved).
			kept = append(kept, d)
		default:
			m, err := c.move(ctx, d)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", d.MessageID, err))
			}
			if m.NewMessageID == "" {
				kept = append(kept, d)
				break
			}
			sentBodies[d.Body] = true
			moved = append(moved, m)
		}
		return all || len(found) < len(want), nil
	})
	c.release(ctx, q, kept)
	if errors.Is(err, errTimeUp) {
		problems = append(problems, "more records may be left: the redrive stops after "+(holdFor/2).String()+" so as to release what it holds; run it again")
	} else if err != nil {
		return moved, err
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		hint := ""
		if isFIFO(q) {
			hint = " (in a FIFO queue a thread's later records show only once its earlier ones are gone: redrive those first, or use --all)"
		}
		problems = append(problems, fmt.Sprintf("not in the dead-letter queue: %s%s", strings.Join(missing, ", "), hint))
	}
	if len(problems) > 0 {
		return moved, fmt.Errorf("dead-letter queue: %w: %s", ErrNotMoved, strings.Join(problems, "; "))
	}
	return moved, nil
}

// move sends one record to the input queue and deletes it from the
// dead-letter queue. The deduplication id is derived from the dead-letter
// record, not the original message: the input queue would drop the
// original's id as a repeat within five minutes, and a redrive retried
// after a failed delete is dropped as one.
func (c *Client) move(ctx context.Context, d DeadLetter) (Moved, error) {
	if d.Thread == "" {
		return Moved{}, fmt.Errorf("no thread: neither %s, a message group nor the body's group_id names one", AttrThread)
	}
	if !infinity.ValidThreadID(d.Thread) {
		return Moved{}, fmt.Errorf("thread %q is not a valid thread id", d.Thread)
	}
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(c.Config.InputQueueURL), MessageBody: aws.String(withID(d))}
	if isFIFO(c.Config.InputQueueURL) {
		in.MessageGroupId = aws.String(string(d.Thread))
		in.MessageDeduplicationId = aws.String(dedupID(d.MessageID))
	}
	for k, v := range d.Attributes {
		if strings.HasPrefix(k, "infinity.") {
			continue
		}
		if in.MessageAttributes == nil {
			in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{}
		}
		in.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	out, err := c.SQS.SendMessage(ctx, in)
	if err != nil {
		return Moved{}, fmt.Errorf("send to the input queue: %w", err)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	del, err := c.SQS.DeleteMessageBatch(dctx, &awssqs.DeleteMessageBatchInput{
		QueueUrl: aws.String(c.Config.DeadLetterQueueURL),
		Entries:  []sqstypes.DeleteMessageBatchRequestEntry{{Id: aws.String("0"), ReceiptHandle: d.receipt}},
	})
	if err == nil && len(del.Failed) > 0 {
		err = errors.New(aws.ToString(del.Failed[0].Message))
	}
	m := Moved{DeadLetter: d, NewMessageID: aws.ToString(out.MessageId)}
	if err != nil {
		// Sent but still there: a later redrive sends it again, which the
		// thread applies once (the body keeps its message id).
		return m, fmt.Errorf("sent to the input queue as %s, but not deleted from the dead-letter queue: %w", m.NewMessageID, err)
	}
	return m, nil
}

// withID returns the record's body with the message id the agent function
// gave it: a body sent without an "id" (the aws sqs send-message recipe)
// was known as "sqs-" and its SQS message id, and a redrive sends it with a
// new SQS message id, so without this the thread would apply it again. The
// original id is the infinity.message_id attribute, else the record's own
// (SQS keeps a message's id when its redrive policy moves it). A body that
// is not a JSON object goes back as it is.
func withID(d DeadLetter) string {
	var body map[string]json.RawMessage
	if json.Unmarshal([]byte(d.Body), &body) != nil || body == nil {
		return d.Body
	}
	var id string
	if raw, ok := body["id"]; ok && json.Unmarshal(raw, &id) == nil && id != "" {
		return d.Body
	}
	orig := d.OriginalID
	if orig == "" {
		orig = d.MessageID
	}
	body["id"], _ = json.Marshal("sqs-" + orig)
	b, err := json.Marshal(body)
	if err != nil {
		return d.Body
	}
	return string(b)
}

// dedupID makes a deduplication id from a dead-letter message id (SQS's
// are UUIDs; anything else is kept to what SQS allows).
func dedupID(id string) string {
	s := "redrive-" + strings.Map(func(r rune) rune {
		if r < '!' || r > '~' {
			return '_'
		}
		return r
	}, id)
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// errTimeUp: receive stopped at its time limit, with records perhaps left.
var errTimeUp = errors.New("stopped at the time limit")

// receiveAll receives up to limit records (default 1000), stopping at an
// empty receive.
func (c *Client) receiveAll(ctx context.Context, q string, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []DeadLetter
	err := c.receive(ctx, q, func(d DeadLetter) (bool, error) {
		out = append(out, d)
		return len(out) < limit, nil
	})
	if errors.Is(err, errTimeUp) {
		err = nil // the listing says how many it did not show
	}
	return out, err
}

// receive receives records of q, invisible for holdFor, and hands each to
// visit until visit says to stop or a receive (long-polled for a second,
// so that every SQS server is asked) brings nothing new. A record received
// twice (a standard queue may do that) is handed on once; the second
// receipt is released at once.
func (c *Client) receive(ctx context.Context, q string, visit func(DeadLetter) (bool, error)) error {
	seen := map[string]bool{}
	deadline := time.Now().Add(holdFor / 2)
	for {
		if !time.Now().Before(deadline) {
			// What was received is held for holdFor: stop in time to
			// release it, and say that more may wait.
			return errTimeUp
		}
		out, err := c.SQS.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(q), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: int32(holdFor / time.Second),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			return fmt.Errorf("receive from %s: %w", q, err)
		}
		fresh := 0
		var again []DeadLetter
		for i, m := range out.Messages {
			d := deadLetter(m)
			if seen[d.MessageID] {
				again = append(again, d)
				continue
			}
			seen[d.MessageID] = true
			fresh++
			goOn, err := visit(d)
			if err != nil || !goOn {
				// Release what this receive brought and was not visited.
				for _, r := range out.Messages[i+1:] {
					again = append(again, deadLetter(r))
				}
				c.release(ctx, q, again)
				return err
			}
		}
		c.release(ctx, q, again)
		if fresh == 0 {
			return nil
		}
	}
}

// release makes records visible again (best effort: SQS does it anyway
// when their visibility timeout ends).
func (c *Client) release(ctx context.Context, q string, recs []DeadLetter) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for chunk := range slices.Chunk(recs, 10) {
		entries := make([]sqstypes.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, d := range chunk {
			entries[i] = sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: d.receipt, VisibilityTimeout: 0}
		}
		c.SQS.ChangeMessageVisibilityBatch(bg, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q), Entries: entries})
	}
}

// queueSize returns how many records q holds, visible or in flight.
func (c *Client) queueSize(ctx context.Context, q string) (int, error) {
	out, err := c.SQS.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(q), AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	}})
	if err != nil {
		return 0, fmt.Errorf("dead-letter queue %s: %w", q, err)
	}
	n := 0
	for _, a := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		v, _ := strconv.Atoi(out.Attributes[string(a)])
		n += v
	}
	return n, nil
}

// deadLetter reads a received record.
func deadLetter(m sqstypes.Message) DeadLetter {
	d := DeadLetter{MessageID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), receipt: m.ReceiptHandle,
		GroupID: m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]}
	if ms, err := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		d.SentAt = time.UnixMilli(ms).UTC()
	}
	d.SQSReceiveCount, _ = strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	for k, v := range m.MessageAttributes {
		if v.StringValue != nil {
			if d.Attributes == nil {
				d.Attributes = map[string]string{}
			}
			d.Attributes[k] = *v.StringValue
		}
	}
	d.Error = d.Attributes[AttrError]
	d.OriginalID = d.Attributes[AttrMessageID]
	d.ReceiveCount, _ = strconv.Atoi(d.Attributes[AttrReceiveCount])
	switch {
	case d.Attributes[AttrThread] != "":
		d.Thread = infinity.ThreadID(d.Attributes[AttrThread])
	case d.GroupID != "":
		d.Thread = infinity.ThreadID(d.GroupID)
	default:
		var body struct {
			GroupID infinity.ThreadID `json:"group_id"`
		}
		if json.Unmarshal([]byte(d.Body), &body) == nil {
			d.Thread = body.GroupID
		}
	}
	return d
}

// AttributeNames returns a record's attribute names, sorted.
func (d DeadLetter) AttributeNames() []string { return slices.Sorted(maps.Keys(d.Attributes)) }

func isFIFO(url string) bool { return strings.HasSuffix(url, ".fifo") }
