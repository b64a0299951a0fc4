package file

import (
	"reflect"

	"github.com/infinity-runtime/infinity/persistence/internal/jsonw"
)

// Journal and snapshot records are written with the hand-written encoder
// of package jsonw; the record types of this package are spelled out here.

// writeRecord writes a journal or snapshot record (see the record type's tags).
func writeRecord(w *jsonw.W, r *record) {
	first := true
	w.Byte('{')
	w.Key(&first, "op")
	w.Str(r.Op)
	if r.Info != nil {
		w.Key(&first, "info")
		w.Value(*r.Info)
	}
	if r.Commit != nil {
		w.Key(&first, "commit")
		if w.Slow {
			w.Value(*r.Commit)
		} else {
			w.Commit(r.Commit)
		}
	}
	if r.Thread != "" {
		w.Key(&first, "thread")
		w.Str(string(r.Thread))
	}
	if len(r.IDs) > 0 {
		w.Key(&first, "ids")
		w.Strs(r.IDs)
	}
	if len(r.Msgs) > 0 {
		w.Key(&first, "msgs")
		w.MsgIDs(r.Msgs)
	}
	if r.Now != 0 {
		w.Key(&first, "now")
		w.Int(r.Now)
	}
	if r.Exp != 0 {
		w.Key(&first, "exp")
		w.Int(r.Exp)
	}
	if r.State != nil {
		w.Key(&first, "state")
		w.Value(*r.State)
	}
	if r.Version != 0 {
		w.Key(&first, "version")
		w.Uint(uint64(r.Version))
	}
	if r.Queued != nil {
		w.Key(&first, "queued")
		if w.Slow {
			w.Value(*r.Queued)
		} else {
			w.Queued(r.Queued)
		}
	}
	if r.Base != 0 {
		w.Key(&first, "base")
		w.Uint(r.Base)
	}
	if r.Count != 0 {
		w.Key(&first, "count")
		w.Int(int64(r.Count))
	}
	if r.Snap != nil {
		w.Key(&first, "snap")
		if w.Slow {
			w.Value(*r.Snap)
		} else {
			writeSnapThread(w, r.Snap)
		}
	}
	if len(r.Marks) > 0 {
		w.Key(&first, "marks")
		w.Byte('[')
		for i, m := range r.Marks {
			if i > 0 {
				w.Byte(',')
			}
			if w.Slow {
				w.Value(m)
				continue
			}
			w.Raw(`{"t":`)
			w.Str(string(m.Thread))
			w.Raw(`,"m":`)
			w.Str(string(m.Msg))
			w.Raw(`,"e":`)
			w.Int(m.Exp)
			w.Byte('}')
		}
		w.Byte(']')
	}
	if len(r.Inbox) > 0 {
		w.Key(&first, "inbox")
		w.Byte('[')
		for i := range r.Inbox {
			if i > 0 {
				w.Byte(',')
			}
			if w.Slow {
				w.Value(r.Inbox[i])
			} else {
				w.Queued(&r.Inbox[i])
			}
		}
		w.Byte(']')
	}
	w.Byte('}')
}

func writeSnapThread(w *jsonw.W, t *snapThread) {
	w.Raw(`{"info":`)
	w.Value(t.Info)
	if len(t.Items) > 0 {
		w.Raw(`,"items":`)
		w.Items(t.Items)
	}
	if len(t.Outbox) > 0 {
		w.Raw(`,"outbox":`)
		w.Outbox(t.Outbox)
	}
	if len(t.Children) > 0 {
		w.Raw(`,"children":`)
		w.ThreadIDs(t.Children)
	}
	if len(t.Applied) > 0 {
		w.Raw(`,"applied":`)
		w.MsgIDs(t.Applied)
	}
	if len(t.Summaries) > 0 {
		w.Raw(`,"summaries":`)
		w.Value(t.Summaries)
	}
	w.Byte('}')
}

// appendRecord appends r's JSON payload to buf: with the hand-written
// encoder when the types are the ones it was written for, else with
// json.Marshal for everything below the record's own fields.
func appendRecord(buf []byte, r *record) ([]byte, error) {
	w := jsonw.W{Buf: buf, Slow: !fastTypesOK}
	writeRecord(&w, r)
	if w.Err != nil {
		return buf, w.Err
	}
	return w.Buf, nil
}

// fastFields lists this package's record types as jsonw.Fields lists its
// own.
var fastFields = map[reflect.Type][]string{
	reflect.TypeFor[record]():     {"Op string op", "Info *infinity.ThreadInfo info,omitempty", "Commit *infinity.Commit commit,omitempty", "Thread infinity.ThreadID thread,omitempty", "IDs []string ids,omitempty", "Msgs []infinity.MessageID msgs,omitempty", "Now int64 now,omitempty", "Exp int64 exp,omitempty", "State *infinity.State state,omitempty", "Version infinity.Version version,omitempty", "Queued *infinity.Queued queued,omitempty", "Base uint64 base,omitempty", "Count int count,omitempty", "Snap *file.snapThread snap,omitempty", "Marks []file.markEntry marks,omitempty", "Inbox []infinity.Queued inbox,omitempty"},
	reflect.TypeFor[markEntry]():  {"Thread infinity.ThreadID t", "Msg infinity.MessageID m", "Exp int64 e"},
	reflect.TypeFor[snapThread](): {"Info infinity.ThreadInfo info", "Items []infinity.Item items,omitempty", "Outbox []infinity.Outgoing outbox,omitempty", "Children []infinity.ThreadID children,omitempty", "Applied []infinity.MessageID applied,omitempty", "Summaries []infinity.Summary summaries,omitempty"},
}

// fastTypesOK reports whether the encoder's types and this package's
// record types still have the fields it was written for.
var fastTypesOK = fastTypesMismatch() == ""

// fastTypesMismatch describes the first difference ("" when there is none).
func fastTypesMismatch() string {
	if !jsonw.OK {
		return "package jsonw is out of date"
	}
	return jsonw.Mismatch(fastFields)
}
