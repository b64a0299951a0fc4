package lambda

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/infinity-runtime/infinity"
)

// DecodeRecord decodes an input-queue record: the reference runtime's
// input-message JSON, whose optional "id" is the stable message id. A body
// without one (a message sent by hand, or by a tool written for the
// reference runtime) gets "sqs-" and the SQS message id, which a
// redelivery keeps. The body's group_id, when set, must be the record's
// message group; when empty the group is taken. Every error wraps
// infinity.ErrInvalid: no retry can fix the record.
func DecodeRecord(r events.SQSMessage) (infinity.InputMessage, error) {
	var msg infinity.InputMessage
	if err := json.Unmarshal([]byte(r.Body), &msg); err != nil {
		return msg, fmt.Errorf("record %s: body: %v: %w", r.MessageId, err, infinity.ErrInvalid)
	}
	group := infinity.ThreadID(r.Attributes["MessageGroupId"])
	switch {
	case msg.GroupID == "":
		msg.GroupID = group
	case group != "" && msg.GroupID != group:
		return msg, fmt.Errorf("record %s: group_id %q is not the message group %q: %w", r.MessageId, msg.GroupID, group, infinity.ErrInvalid)
	}
	if msg.ID == "" {
		if r.MessageId == "" {
			return msg, fmt.Errorf("record without a message id or body id: %w", infinity.ErrInvalid)
		}
		msg.ID = infinity.MessageID("sqs-" + r.MessageId)
	}
	if err := msg.Validate(); err != nil {
		return msg, fmt.Errorf("record %s: %w", r.MessageId, err)
	}
	return msg, nil
}
