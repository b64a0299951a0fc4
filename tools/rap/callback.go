package rap

import (
	"encoding/json"
	"fmt"

	"github.com/infinity-runtime/infinity"
)

// Callback is one decoded, validated callback. Type says which one of the
// pointers is set.
type Callback struct {
	Type              string
	ToolResult        *ToolResult
	SubscriptionEvent *SubscriptionEvent
	OAuth             *OAuth
	UserChoice        *UserChoice
	ViewUpdate        *ViewUpdate
	// DeliveryKey optionally identifies one logical delivery of a
	// subscription event across retries (the Handler takes it from the
	// Idempotency-Key header). It is not part of the body; see Message.
	DeliveryKey string
}

// Group returns the thread the callback belongs to.
func (c Callback) Group() infinity.ThreadID {
	switch {
	case c.ToolResult != nil:
		return infinity.ThreadID(c.ToolResult.GroupID)
	case c.SubscriptionEvent != nil:
		return infinity.ThreadID(c.SubscriptionEvent.GroupID)
	case c.OAuth != nil:
		return infinity.ThreadID(c.OAuth.GroupID)
	case c.UserChoice != nil:
		return infinity.ThreadID(c.UserChoice.GroupID)
	case c.ViewUpdate != nil:
		return infinity.ThreadID(c.ViewUpdate.GroupID)
	}
	return ""
}

// CallID returns the tool call the callback belongs to: id for tool_result,
// oauth and user_choice, tool_call_id for subscription_event, and "" for
// view_update, which names no call.
func (c Callback) CallID() string {
	switch {
	case c.ToolResult != nil:
		return c.ToolResult.ID
	case c.SubscriptionEvent != nil:
		return c.SubscriptionEvent.ToolCallID
	case c.OAuth != nil:
		return c.OAuth.ID
	case c.UserChoice != nil:
		return c.UserChoice.ID
	}
	return ""
}

// DecodeCallback parses body and validates it against its type's schema
// (RAP §5). Unknown fields are tolerated; an unknown type, a missing
// required field or a field of the wrong type is an error wrapping
// infinity.ErrInvalid that names the field.
func DecodeCallback(body []byte) (Callback, error) {
	o, err := parseObject("callback", body)
	if err != nil {
		return Callback{}, err
	}
	typ, err := o.str("type", true)
	if err != nil {
		return Callback{}, err
	}
	o.what = typ
	c := Callback{Type: typ}
	switch typ {
	case TypeToolResult:
		c.ToolResult, err = decodeToolResult(o)
	case TypeSubscriptionEvent:
		c.SubscriptionEvent, err = decodeEvent(o)
	case TypeOAuth:
		c.OAuth, err = decodeOAuth(o)
	case TypeUserChoice:
		c.UserChoice, err = decodeUserChoice(o)
	case TypeViewUpdate:
		c.ViewUpdate, err = decodeViewUpdate(o)
	default:
		return Callback{}, fmt.Errorf("callback: field \"type\" has unknown value %q: %w", typ, infinity.ErrInvalid)
	}
	if err != nil {
		return Callback{}, err
	}
	return c, nil
}

// group reads group_id, which must also be usable as an engine thread id.
func (o object) group() (string, error) {
	g, err := o.str("group_id", true)
	if err != nil {
		return "", err
	}
	if !infinity.ValidThreadID(infinity.ThreadID(g)) {
		return "", o.fail("group_id", "is not a valid thread id")
	}
	return g, nil
}

func decodeToolResult(o object) (*ToolResult, error) {
	var r ToolResult
	var err error
	if r.GroupID, err = o.group(); err != nil {
		return nil, err
	}
	if r.ID, err = o.str("id", true); err != nil {
		return nil, err
	}
	if r.CallID, err = o.optStr("call_id"); err != nil {
		return nil, err
	}
	if r.Text, err = o.optStr("text"); err != nil {
		return nil, err
	}
	items, err := o.array("content", false)
	if err != nil {
		return nil, err
	}
	for i, raw := range items {
		it, err := decodeItem(o.what, i, raw)
		if err != nil {
			return nil, err
		}
		r.Content = append(r.Content, it)
	}
	if r.Text == nil && len(r.Content) == 0 {
		return nil, o.fail("text", "or a non-empty \"content\" is required")
	}
	segs, err := o.array("display_as", false)
	if err != nil {
		return nil, err
	}
	for i, raw := range segs {
		so, err := parseObject(fmt.Sprintf("%s display_as[%d]", o.what, i), raw)
		if err != nil {
			return nil, err
		}
		var s Segment
		if s.Type, err = so.str("type", true); err != nil {
			return nil, err
		}
		if !so.has("content") {
			return nil, so.fail("content", "is required")
		}
		s.Content = so.m["content"]
		r.DisplayAs = append(r.DisplayAs, s)
	}
	if r.Subscription, err = o.boolean("subscription"); err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeItem(what string, i int, raw json.RawMessage) (ContentItem, error) {
	io, err := parseObject(fmt.Sprintf("%s content[%d]", what, i), raw)
	if err != nil {
		return ContentItem{}, err
	}
	var it ContentItem
	if it.Type, err = io.str("type", true); err != nil {
		return ContentItem{}, err
	}
	switch it.Type {
	case "text":
		if !io.has("text") {
			return ContentItem{}, io.fail("text", "is required")
		}
		it.Text, err = io.str("text", false)
	case "image":
		if it.Data, err = io.str("data", true); err != nil {
			return ContentItem{}, err
		}
		it.MediaType, err = io.str("mediaType", true)
	default:
		return ContentItem{}, io.fail("type", "has unknown value %q", it.Type)
	}
	if err != nil {
		return ContentItem{}, err
	}
	return it, nil
}

func decodeEvent(o object) (*SubscriptionEvent, error) {
	var e SubscriptionEvent
	var err error
	if e.GroupID, err = o.group(); err != nil {
		return nil, err
	}
	if e.ToolCallID, err = o.str("tool_call_id", true); err != nil {
		return nil, err
	}
	if !o.has("text") {
		return nil, o.fail("text", "is required")
	}
	if e.Text, err = o.str("text", false); err != nil {
		return nil, err
	}
	if e.Associative, err = o.boolean("associative"); err != nil {
		return nil, err
	}
	if e.Final, err = o.boolean("final"); err != nil {
		return nil, err
	}
	return &e, nil
}

func decodeOAuth(o object) (*OAuth, error) {
	var a OAuth
	var err error
	if a.GroupID, err = o.group(); err != nil {
		return nil, err
	}
	if a.ID, err = o.str("id", true); err != nil {
		return nil, err
	}
	if a.CallID, err = o.optStr("call_id"); err != nil {
		return nil, err
	}
	if a.AuthURL, err = o.str("auth_url", true); err != nil {
		return nil, err
	}
	if !absURL(a.AuthURL) {
		return nil, o.fail("auth_url", "must be an absolute http(s) URL")
	}
	return &a, nil
}

func decodeUserChoice(o object) (*UserChoice, error) {
	var u UserChoice
	var err error
	if u.GroupID, err = o.group(); err != nil {
		return nil, err
	}
	if u.ID, err = o.str("id", true); err != nil {
		return nil, err
	}
	if u.CallID, err = o.optStr("call_id"); err != nil {
		return nil, err
	}
	if u.Prompt, err = o.str("prompt", true); err != nil {
		return nil, err
	}
	choices, err := o.array("choices", true)
	if err != nil {
		return nil, err
	}
	if len(choices) == 0 {
		return nil, o.fail("choices", "must hold at least one label")
	}
	for i, raw := range choices {
		var s string
		if kind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
			return nil, o.fail("choices", "item %d must be a string", i)
		}
		u.Choices = append(u.Choices, s)
	}
	if u.Default, err = o.integer("default"); err != nil {
		return nil, err
	}
	if u.Default < 0 || u.Default >= len(u.Choices) {
		return nil, o.fail("default", "must index choices (0 to %d), got %d", len(u.Choices)-1, u.Default)
	}
	if u.ResponseURL, err = o.str("response_url", true); err != nil {
		return nil, err
	}
	if !absURL(u.ResponseURL) {
		return nil, o.fail("response_url", "must be an absolute http(s) URL")
	}
	return &u, nil
}

func decodeViewUpdate(o object) (*ViewUpdate, error) {
	var v ViewUpdate
	var err error
	if v.GroupID, err = o.group(); err != nil {
		return nil, err
	}
	if v.ViewType, err = o.str("view_type", true); err != nil {
		return nil, err
	}
	if v.Content, err = o.obj("content", true); err != nil {
		return nil, err
	}
	return &v, nil
}
