package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/infinity-runtime/infinity"
)

// envelope is the body of a relay-queue message.
type envelope struct {
	// Message is the InputMessage JSON.
	Message json.RawMessage `json:"message"`
	// At is when the message is due (informational: the relay forwards
	// whenever the record arrives).
	At time.Time `json:"at,omitzero"`
}

// Relay is the delay relay's logic: it forwards relay-queue records to the
// FIFO input queue. A Lambda handler on the relay queue calls Forward once
// per record. It is safe for concurrent use.
type Relay struct {
	sqs      SQSAPI
	queueURL string
}

// NewRelay returns a Relay forwarding to the FIFO input queue at
// inputQueueURL, or an error wrapping infinity.ErrInvalid.
func NewRelay(client SQSAPI, inputQueueURL string) (*Relay, error) {
	if client == nil || !strings.HasSuffix(inputQueueURL, ".fifo") {
		return nil, fmt.Errorf("sqs relay config: need an SQS client and a FIFO input queue URL (got %q): %w", inputQueueURL, infinity.ErrInvalid)
	}
	return &Relay{sqs: client, queueURL: inputQueueURL}, nil
}

// Forward decodes one relay-queue record body and sends its message to the
// input queue as an immediate Send would (same group, same stable dedup id),
// even if the record arrives before its time. A malformed body is an error
// wrapping infinity.ErrInvalid: permanent, the caller should report the
// record (to a DLQ or a log) rather than retry it. Other errors are wrapped
// SDK errors, retryable ones also wrapping infinity.ErrRetryable.
func (r *Relay) Forward(ctx context.Context, body string) error {
	msg, _, err := DecodeRelay(body)
	if err != nil {
		return err
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("sqs relay: encode %s: %w: %v", msg.ID, infinity.ErrInvalid, err)
	}
	return sendInput(ctx, r.sqs, r.queueURL, msg, string(b))
}

// DecodeRelay decodes a relay-queue record body into the message and the
// time it is due (zero if the envelope has none). The message must carry an
// id and pass InputMessage.Validate; any other body is infinity.ErrInvalid.
func DecodeRelay(body string) (infinity.InputMessage, time.Time, error) {
	var raw envelope
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		return infinity.InputMessage{}, time.Time{}, fmt.Errorf("sqs relay: decode envelope: %w: %v", infinity.ErrInvalid, err)
	}
	if len(bytes.TrimSpace(raw.Message)) == 0 || bytes.Equal(raw.Message, []byte("null")) {
		return infinity.InputMessage{}, time.Time{}, fmt.Errorf("sqs relay: envelope without a message: %w", infinity.ErrInvalid)
	}
	msg, err := infinity.DecodeInputMessage(raw.Message)
	if err != nil {
		return infinity.InputMessage{}, time.Time{}, fmt.Errorf("sqs relay: %w", err)
	}
	if msg.ID == "" {
		return infinity.InputMessage{}, time.Time{}, fmt.Errorf("sqs relay: message to %s without an id: %w", msg.GroupID, infinity.ErrInvalid)
	}
	return msg, raw.At, nil
}

// DecodeInput decodes an input-queue body: the InputMessage JSON, or the
// reference runtime's body without "id" (the caller then assigns one, from
// the SQS record for instance). The message must pass
// InputMessage.Validate; anything else is infinity.ErrInvalid.
func DecodeInput(body string) (infinity.InputMessage, error) {
	msg, err := infinity.DecodeInputMessage([]byte(body))
	if err != nil {
		return infinity.InputMessage{}, fmt.Errorf("sqs: %w", err)
	}
	return msg, nil
}
