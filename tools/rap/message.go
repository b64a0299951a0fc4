package rap

import (
	"errors"
	"fmt"

	"github.com/infinity-runtime/infinity"
)

// ErrNotMessage: the callback (a view_update) is not an input message.
var ErrNotMessage = errors.New("callback is not an input message")

// Message id prefixes. tool_result, oauth and user_choice ids are derived
// from the call id alone, as the reference runtime's are, so a redelivered
// callback keeps its id and the thread applies it once. Message ids are
// scoped to the thread (the sender deduplicates per thread), so group_id is
// not part of them.
const (
	prefixResult = "rap-tool-result-"
	prefixOAuth  = "rap-oauth-"
	prefixChoice = "rap-user-choice-"
	prefixEvent  = "rap-event-"
)

// maxMessageID keeps derived ids within an SQS deduplication id.
const maxMessageID = 128

// Message converts a tool_result, subscription_event, oauth or user_choice
// callback into the engine's input message, in the shape the runtime this
// protocol comes from gives it (docs/rap.md, section 2.5):
//
//   - tool_result → a tool result for id, its parts from content when
//     present, else from text; display_as and subscription carried over.
//     Id rap-tool-result-{id}.
//   - subscription_event → a tool result for tool_call_id tagged
//     Synthetic{subscription_event, tool_call_id, associative, final}.
//   - oauth → ContentOAuth. Id rap-oauth-{id}.
//   - user_choice → ContentUserChoice. Id rap-user-choice-{id}.
//
// Subscription events carry no identity of their own and two identical
// events may legitimately follow each other (RAP §10.4), so a hash of
// the body would silently drop real events. Their id is therefore derived
// from DeliveryKey when the tool supplied one (an Idempotency-Key header:
// retries of that delivery collapse), and is random otherwise, as in the
// reference: a retried delivery without a key may then be applied twice.
//
// Matching against pending calls and active subscriptions is the engine's
// job, not this function's. A view_update returns ErrNotMessage.
func (c Callback) Message() (infinity.InputMessage, error) {
	switch {
	case c.ToolResult != nil:
		r := c.ToolResult
		return infinity.InputMessage{
			ID:      messageID(prefixResult, r.ID),
			GroupID: infinity.ThreadID(r.GroupID),
			Content: infinity.Content{
				Type:   infinity.ContentToolResult,
				ID:     r.ID,
				CallID: deref(r.CallID),
				Parts:  parts(r),
			},
			DisplayAs:    segments(r.DisplayAs),
			Subscription: r.Subscription,
		}, nil
	case c.SubscriptionEvent != nil:
		e := c.SubscriptionEvent
		id := infinity.MessageID(infinity.DeriveID(prefixEvent, e.GroupID, e.ToolCallID, c.DeliveryKey))
		if c.DeliveryKey == "" {
			id = infinity.MessageID(prefixEvent) + infinity.NewMessageID()
		}
		return infinity.InputMessage{
			ID:      id,
			GroupID: infinity.ThreadID(e.GroupID),
			Content: infinity.ResultContent(e.ToolCallID, e.Text),
			Synthetic: &infinity.Synthetic{
				Type:        infinity.SyntheticSubscriptionEvent,
				ToolCallID:  e.ToolCallID,
				Associative: e.Associative,
				Final:       e.Final,
			},
		}, nil
	case c.OAuth != nil:
		a := c.OAuth
		return infinity.InputMessage{
			ID:      messageID(prefixOAuth, a.ID),
			GroupID: infinity.ThreadID(a.GroupID),
			Content: infinity.Content{Type: infinity.ContentOAuth, ID: a.ID, CallID: deref(a.CallID), AuthURL: a.AuthURL},
		}, nil
	case c.UserChoice != nil:
		u := c.UserChoice
		return infinity.InputMessage{
			ID:      messageID(prefixChoice, u.ID),
			GroupID: infinity.ThreadID(u.GroupID),
			Content: infinity.Content{
				Type:        infinity.ContentUserChoice,
				ID:          u.ID,
				CallID:      deref(u.CallID),
				Prompt:      u.Prompt,
				Choices:     append([]string(nil), u.Choices...),
				Default:     u.Default,
				ResponseURL: u.ResponseURL,
			},
		}, nil
	case c.ViewUpdate != nil:
		return infinity.InputMessage{}, fmt.Errorf("%s for %s: %w", c.Type, c.ViewUpdate.GroupID, ErrNotMessage)
	}
	return infinity.InputMessage{}, fmt.Errorf("empty callback: %w", infinity.ErrInvalid)
}

// messageID is prefix+id, or prefix+hash(id) when that would be too long.
func messageID(prefix, id string) infinity.MessageID {
	if len(prefix)+len(id) <= maxMessageID {
		return infinity.MessageID(prefix + id)
	}
	return infinity.MessageID(infinity.DeriveID(prefix+"h-", id))
}

func parts(r *ToolResult) []infinity.Part {
	if len(r.Content) == 0 {
		return []infinity.Part{{Type: "text", Text: deref(r.Text)}}
	}
	out := make([]infinity.Part, len(r.Content))
	for i, it := range r.Content {
		out[i] = infinity.Part{Type: it.Type, Text: it.Text, Data: it.Data, MediaType: it.MediaType}
	}
	return out
}

func segments(s []Segment) []infinity.DisplaySegment {
	if len(s) == 0 {
		return nil
	}
	out := make([]infinity.DisplaySegment, len(s))
	for i, seg := range s {
		out[i] = infinity.DisplaySegment{Type: seg.Type, Content: seg.Content}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
