package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/persistence/internal/model"
)

type stateStore struct{ s *Store }

var (
	_ infinity.StateStore = (*stateStore)(nil)
	_ infinity.Inbox      = (*stateStore)(nil)
)

// Processed reports whether msg was marked processed for the thread and
// the mark has not expired.
func (st *stateStore) Processed(ctx context.Context, id infinity.ThreadID, msg infinity.MessageID) (bool, error) {
	now := st.s.opts.clock.Now().UnixNano()
	return readOf(st.s, ctx, id, func() (bool, error) {
		exp, ok, err := st.s.member(tagMark, id, string(msg))
		return ok && now < int64(exp), err
	})
}

// MarkProcessed records msgs as processed until ttl from now, and takes
// them out of the inbox.
func (st *stateStore) MarkProcessed(ctx context.Context, id infinity.ThreadID, msgs []infinity.MessageID, ttl time.Duration) error {
	any, err := model.CheckMark(id, msgs, ttl)
	if err != nil || !any {
		return err
	}
	exp := model.Expiry(st.s.opts.clock.Now().UnixNano(), ttl)
	return st.s.mutateWait(ctx, only(id), func(t *tx) error {
		for _, m := range msgs {
			k := msgKey(tagMark, id, m)
			old, ok, err := t.member(tagMark, id, string(m))
			if err != nil {
				return err
			}
			if ok {
				t.del(expiryKey(int64(old), k))
			} else {
				t.occAdd(tagMark, id)
			}
			t.setMember(tagMark, id, string(m), uint64(exp))
			t.set(expiryKey(exp, k), nil)
			if err := t.unqueue(id, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// Load returns the thread's state and its version, or ErrNotFound.
func (st *stateStore) Load(ctx context.Context, id infinity.ThreadID) (infinity.State, infinity.Version, error) {
	type loaded struct {
		s infinity.State
		v infinity.Version
	}
	l, err := readOf(st.s, ctx, id, func() (loaded, error) {
		var sv saved
		ok, err := getJSON(st.s.db, threadKey(tagState, string(id), 0), &sv)
		if err != nil {
			return loaded{}, err
		}
		if !ok {
			return loaded{}, fmt.Errorf("load state %s: %w", id, infinity.ErrNotFound)
		}
		return loaded{sv.State, sv.Version}, nil
	})
	return l.s, l.v, err
}

// Save stores s if the stored version is still v and returns the new
// version; otherwise ErrConflict.
func (st *stateStore) Save(ctx context.Context, id infinity.ThreadID, s infinity.State, v infinity.Version) (infinity.Version, error) {
	err := st.s.mutateWait(ctx, only(id), func(t *tx) error {
		k := threadKey(tagState, string(id), 0)
		var sv saved
		if _, err := getJSON(t.b, k, &sv); err != nil {
			return err
		}
		if sv.Version != v {
			return fmt.Errorf("save state %s: version %d, stored %d: %w", id, v, sv.Version, infinity.ErrConflict)
		}
		val, err := encode(saved{Version: v + 1, State: s})
		if err != nil {
			return fmt.Errorf("save state %s: %w", id, err)
		}
		t.set(k, val)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return v + 1, nil
}

// Put records msg as due at at and returns once it is durable; a message
// the thread already processed is not recorded (false), and one already
// waiting is kept as it is (true).
func (st *stateStore) Put(ctx context.Context, msg infinity.InputMessage, at time.Time) (bool, error) {
	if err := model.CheckPut(msg); err != nil {
		return false, err
	}
	now := st.s.opts.clock.Now().UnixNano()
	processed := false
	err := st.s.mutateWait(ctx, only(msg.GroupID), func(t *tx) error {
		exp, ok, err := t.member(tagMark, msg.GroupID, string(msg.ID))
		if err != nil {
			return err
		}
		if processed = ok && now < int64(exp); processed {
			return errUnchanged
		}
		put, err := t.queue(msg, at)
		if err == nil && !put {
			return errUnchanged
		}
		return err
	})
	return err == nil && !processed, err
}

// Drop removes waiting messages; absent ids are ignored.
func (st *stateStore) Drop(ctx context.Context, id infinity.ThreadID, msgs ...infinity.MessageID) error {
	return st.s.mutateWait(ctx, only(id), func(t *tx) error {
		for _, m := range msgs {
			if err := t.unqueue(id, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// Waiting returns every waiting message in the order they were put.
func (st *stateStore) Waiting(ctx context.Context) ([]infinity.Queued, error) {
	return read(st.s, ctx, func() ([]infinity.Queued, error) {
		out := make([]infinity.Queued, 0, max(st.s.waiting.Load(), 0))
		err := scanPrefix(st.s.db, []byte{tagQueued}, func(k, v []byte) (bool, error) {
			var q infinity.Queued
			if err := decode(k, v, &q); err != nil {
				return false, err
			}
			out = append(out, q)
			return true, nil
		})
		return out, err
	})
}

// queue puts msg into the inbox unless its id waits there already
// (false).
func (t *tx) queue(msg infinity.InputMessage, at time.Time) (bool, error) {
	_, waits, err := t.member(tagWaitsFor, msg.GroupID, string(msg.ID))
	if err != nil || waits {
		return false, err
	}
	// A message its thread marked processed is not queued (as Put).
	exp, marked, err := t.member(tagMark, msg.GroupID, string(msg.ID))
	if err != nil || marked && t.s.opts.clock.Now().UnixNano() < int64(exp) {
		return false, err
	}
	q := infinity.Queued{Message: msg, At: at}
	v, err := encodeQueued(&q)
	if err != nil {
		return false, fmt.Errorf("inbox put %s: %w", msg.GroupID, err)
	}
	seq := t.s.inSeq.Add(1)
	t.occAdd(tagWaitsFor, msg.GroupID)
	t.set(queuedKey(seq), v)
	t.setMember(tagWaitsFor, msg.GroupID, string(msg.ID), seq)
	t.waiting++
	return true, nil
}

// unqueue takes a message out of the inbox, if it waits there.
func (t *tx) unqueue(id infinity.ThreadID, msg infinity.MessageID) error {
	seq, ok, err := t.member(tagWaitsFor, id, string(msg))
	if err != nil || !ok {
		return err
	}
	t.del(queuedKey(seq))
	t.delMember(tagWaitsFor, id, string(msg))
	t.occRemove(tagWaitsFor, id, 1)
	t.waiting--
	return nil
}

// sweepEvery is how often expired processed marks are deleted.
const sweepEvery = time.Minute

// sweepBatch is the most marks one sweep batch deletes.
const sweepBatch = 1024

// janitor deletes expired processed marks, at Open and then every
// sweepEvery, until Close.
func (s *Store) janitor() {
	defer s.bg.Done()
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		if err := s.sweep(); err != nil && !errors.Is(err, ErrStoreClosed) {
			s.opts.logger.Warn("disk store: sweeping expired processed marks", "dir", s.dir, "err", err)
		}
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// sweep deletes the processed marks expired at the clock's reading, a
// batch at a time. The deletions are not made durable by themselves: a
// crash that loses them leaves expired marks for the next sweep.
func (s *Store) sweep() error {
	now := s.opts.clock.Now().UnixNano()
	if now < 0 {
		return nil
	}
	upper := binary.BigEndian.AppendUint64([]byte{tagExpiry}, uint64(now)+1)
	for {
		n := 0
		_, err := s.mutate(context.Background(), false, everything, func(t *tx) error {
			return scan(t.b, []byte{tagExpiry}, upper, func(k, _ []byte) (bool, error) {
				x := slices.Clone(k)
				t.del(x)
				mark := markFromExpiry(x)
				id, msg, ok := splitThreadKey(mark)
				if !ok {
					return false, fmt.Errorf("disk store: key %q: malformed expiry key: %w", x, ErrCorrupt)
				}
				t.delMember(tagMark, infinity.ThreadID(id), string(msg))
				t.occRemove(tagMark, infinity.ThreadID(id), 1)
				n++
				return n < sweepBatch, nil
			})
		})
		if err != nil || n < sweepBatch {
			return err
		}
		select {
		case <-s.stop:
			return nil
		default:
		}
	}
}
