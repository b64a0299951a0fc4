package model

import (
	"encoding/json"
	"slices"

	"github.com/infinity-runtime/infinity"
)

// The clone functions copy everything a caller could mutate through a value:
// slices, byte slices (json.RawMessage) and pointed-to structs. Strings are
// immutable and shared. CloneItems, CloneOutbox and CloneState are for the
// stores' wrappers, which copy what they are given before taking their lock.

// CloneItems returns a deep copy of items (nil when empty). The copies of
// the items' calls, results, usages, call arguments and result parts share
// a few allocations per call (one per kind) instead of several per item;
// every copied slice is capped at its length, so appending to one never
// writes into another.
func CloneItems(items []infinity.Item) []infinity.Item { return cloneItems(items, 0) }

// cloneItems is CloneItems with room for spare more items in the returned
// slice.
func cloneItems(items []infinity.Item, spare int) []infinity.Item {
	if len(items) == 0 {
		return nil
	}
	var nCall, nResult, nUsage, nArgs, nParts int
	for i := range items {
		it := &items[i]
		if it.Call != nil {
			nCall++
			nArgs += len(it.Call.Args)
		}
		if it.Result != nil {
			nResult++
			nParts += len(it.Result.Parts)
		}
		if it.Usage != nil {
			nUsage++
		}
	}
	out := make([]infinity.Item, len(items), len(items)+spare)
	copy(out, items)
	var (
		calls   []infinity.ToolCall
		results []infinity.ToolResult
		usages  []infinity.Usage
		args    []byte
		parts   []infinity.Part
	)
	if nCall > 0 {
		calls = make([]infinity.ToolCall, 0, nCall)
	}
	if nResult > 0 {
		results = make([]infinity.ToolResult, 0, nResult)
	}
	if nUsage > 0 {
		usages = make([]infinity.Usage, 0, nUsage)
	}
	if nArgs > 0 {
		args = make([]byte, 0, nArgs)
	}
	if nParts > 0 {
		parts = make([]infinity.Part, 0, nParts)
	}
	for i := range out {
		it := &out[i]
		if it.Call != nil {
			c := *it.Call
			if len(c.Args) == 0 && c.Args != nil {
				c.Args = json.RawMessage{} // empty, not nil; allocates nothing
			} else if c.Args != nil {
				n := len(args)
				args = append(args, c.Args...)
				c.Args = args[n:len(args):len(args)]
			}
			calls = append(calls, c)
			it.Call = &calls[len(calls)-1]
		}
		if it.Result != nil {
			r := *it.Result
			if len(r.Parts) == 0 && r.Parts != nil {
				r.Parts = []infinity.Part{}
			} else if r.Parts != nil {
				n := len(parts)
				parts = append(parts, r.Parts...)
				r.Parts = parts[n:len(parts):len(parts)]
			}
			r.Display = cloneDisplay(r.Display)
			results = append(results, r)
			it.Result = &results[len(results)-1]
		}
		if it.Usage != nil {
			usages = append(usages, *it.Usage)
			it.Usage = &usages[len(usages)-1]
		}
	}
	return out
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

// CloneSummaryOf returns a copy of *s, or nil for nil (a Summary read's
// result, copied after the lock).
func CloneSummaryOf(s *infinity.Summary) *infinity.Summary {
	if s == nil {
		return nil
	}
	c := CloneSummary(*s)
	return &c
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
