package lambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/infinity-runtime/infinity"
)

// Relay is the handler of the delay relay function: the relay queue (a
// standard queue, where a message can carry DelaySeconds) hands it delayed
// messages once they are due, and it forwards each to the FIFO input queue
// with the message's stable deduplication id. Records are independent (the
// relay queue keeps no order), so only a failed record comes back.
type Relay struct {
	// Forward forwards one relay-queue body; an error wrapping
	// infinity.ErrInvalid means the body can never be forwarded. The SQS
	// adapter's Relay provides it.
	Forward Forwarder
	// DeadLetter, when set, receives bodies that can never be forwarded,
	// with why; without it they are reported failed, for the redrive policy.
	DeadLetter DeadLetterer
	Logger     *slog.Logger
}

// Handle forwards the batch and reports the records to retry.
func (r *Relay) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	if r.Forward == nil {
		return resp, fmt.Errorf("relay: no forwarder configured: %w", infinity.ErrInvalid)
	}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	for _, rec := range ev.Records {
		err := r.Forward.Forward(ctx, rec.Body)
		if err == nil {
			continue
		}
		if errors.Is(err, infinity.ErrInvalid) && r.DeadLetter != nil {
			if derr := r.DeadLetter.DeadLetter(ctx, deadRecord(rec, err)); derr == nil {
				log.Error("unusable relay record moved to the dead-letter queue", "message_id", rec.MessageId, "err", err)
				continue
			}
		}
		log.Error("relay failed; the record comes back", "message_id", rec.MessageId, "err", err)
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
	}
	return resp, nil
}
