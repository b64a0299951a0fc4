package model

import (
	"slices"

	"github.com/infinity-runtime/infinity"
)

// The clone functions copy everything a caller could mutate through a value:
// slices, byte slices (json.RawMessage) and pointed-to structs. Strings are
// immutable and shared. CloneItems, CloneOutbox and CloneState are for the
// stores' wrappers, which copy what they are given before taking their lock.

// CloneItems returns a deep copy of items (nil when empty).
func CloneItems(items []infinity.Item) []infinity.Item {
	if len(items) == 0 {
		return nil
	}
	out := make([]infinity.Item, len(items))
	for i, it := range items {
		out[i] = cloneItem(it)
	}
	return out
}

func cloneItem(it infinity.Item) infinity.Item {
	if it.Call != nil {
		c := cloneCall(*it.Call)
		it.Call = &c
	}
	if it.Result != nil {
		r := *it.Result
		r.Parts = slices.Clone(r.Parts)
		r.Display = cloneDisplay(r.Display)
		it.Result = &r
	}
	if it.Usage != nil {
		u := *it.Usage
		it.Usage = &u
	}
	return it
}

func cloneCall(c infinity.ToolCall) infinity.ToolCall {
	c.Args = slices.Clone(c.Args)
	return c
}

func cloneDisplay(d []infinity.DisplaySegment) []infinity.DisplaySegment {
	if d == nil {
		return nil
	}
	out := slices.Clone(d)
	for i := range out {
		out[i].Content = slices.Clone(out[i].Content)
	}
	return out
}

// CloneOutbox returns a deep copy of o (nil when empty).
func CloneOutbox(o []infinity.Outgoing) []infinity.Outgoing {
	if len(o) == 0 {
		return nil
	}
	out := make([]infinity.Outgoing, len(o))
	for i, x := range o {
		out[i] = cloneOutgoing(x)
	}
	return out
}

func cloneOutgoing(o infinity.Outgoing) infinity.Outgoing {
	if o.Message != nil {
		m := CloneMessage(*o.Message)
		o.Message = &m
	}
	if o.Invoke != nil {
		inv := *o.Invoke
		inv.Call = cloneCall(inv.Call)
		o.Invoke = &inv
	}
	return o
}

// CloneMessage returns a deep copy of m.
func CloneMessage(m infinity.InputMessage) infinity.InputMessage {
	m.Metadata = slices.Clone(m.Metadata)
	if m.Synthetic != nil {
		s := *m.Synthetic
		m.Synthetic = &s
	}
	m.DisplayAs = cloneDisplay(m.DisplayAs)
	m.Content.Parts = slices.Clone(m.Content.Parts)
	m.Content.Choices = slices.Clone(m.Content.Choices)
	return m
}

// CloneState returns a deep copy of s.
func CloneState(s infinity.State) infinity.State {
	s.Metadata = slices.Clone(s.Metadata)
	s.Subscriptions = slices.Clone(s.Subscriptions)
	if s.Choices != nil {
		s.Choices = slices.Clone(s.Choices)
		for i := range s.Choices {
			s.Choices[i].Choices = slices.Clone(s.Choices[i].Choices)
		}
	}
	return s
}

// CloneSummary deep-copies a summary.
func CloneSummary(s infinity.Summary) infinity.Summary {
	if s.Calls != nil {
		calls := make([]infinity.SummaryCall, len(s.Calls))
		for i, c := range s.Calls {
			c.Call = cloneCall(c.Call)
			calls[i] = c
		}
		s.Calls = calls
	}
	return s
}
