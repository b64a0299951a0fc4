package file

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/infinity-runtime/infinity"
)

// Record operations. Journal records carry one mutation; snapshot records
// carry one piece of the whole state.
const (
	opCreate   = "create"
	opCommit   = "commit"
	opMarkSent = "sent"
	opMark     = "mark"
	opSave     = "save"
	opPut      = "put"
	opDrop     = "drop"

	opSnapHeader  = "snapshot"
	opSnapThread  = "thread"
	opSnapState   = "state"
	opSnapMarks   = "marks"
	opSnapInbox   = "inbox"
	opSnapTrailer = "end"
)

// record is the JSON payload of one journal or snapshot record.
type record struct {
	Op      string               `json:"op"`
	Info    *infinity.ThreadInfo `json:"info,omitempty"`
	Commit  *infinity.Commit     `json:"commit,omitempty"`
	Thread  infinity.ThreadID    `json:"thread,omitempty"`
	IDs     []string             `json:"ids,omitempty"`
	Msgs    []infinity.MessageID `json:"msgs,omitempty"`
	Now     int64                `json:"now,omitempty"`
	Exp     int64                `json:"exp,omitempty"`
	State   *infinity.State      `json:"state,omitempty"`
	Version infinity.Version     `json:"version,omitempty"`
	Queued  *infinity.Queued     `json:"queued,omitempty"`

	// Snapshot records.
	Base  uint64            `json:"base,omitempty"`  // header: first journal segment not covered
	Count int               `json:"count,omitempty"` // trailer: records before it
	Snap  *snapThread       `json:"snap,omitempty"`
	Marks []markEntry       `json:"marks,omitempty"`
	Inbox []infinity.Queued `json:"inbox,omitempty"`
}

// snapThread is one thread in a snapshot: model.ThreadData with JSON tags
// (the two convert into each other).
type snapThread struct {
	Info      infinity.ThreadInfo  `json:"info"`
	Items     []infinity.Item      `json:"items,omitempty"`
	Outbox    []infinity.Outgoing  `json:"outbox,omitempty"`
	Children  []infinity.ThreadID  `json:"children,omitempty"`
	Applied   []infinity.MessageID `json:"applied,omitempty"`
	Summaries []infinity.Summary   `json:"summaries,omitempty"`
}

// markEntry is one processed mark in a snapshot: model.Mark with JSON
// tags (the two convert into each other).
type markEntry struct {
	Thread infinity.ThreadID  `json:"t"`
	Msg    infinity.MessageID `json:"m"`
	Exp    int64              `json:"e"`
}

// encodeRecord encodes a record's payload into a pooled buffer; the caller
// frees it (rb.free) once the journal has taken a copy (after append). A
// value JSON cannot encode (a json.RawMessage that is not valid JSON) is
// ErrInvalid.
func encodeRecord(r record) (*recBuf, error) {
	rb := recBufs.Get().(*recBuf)
	b, err := appendRecord(rb.b[:0], &r)
	if err != nil {
		rb.free()
		return nil, fmt.Errorf("encode record: %w: %v", infinity.ErrInvalid, err)
	}
	rb.b = b
	if len(b) > maxRecord {
		// Open would read a longer record as a damaged header: refuse it
		// now rather than acknowledge what cannot be read back.
		rb.free()
		return nil, fmt.Errorf("encode record: %d bytes is over the %d-byte limit of one change: %w", len(b), maxRecord, infinity.ErrInvalid)
	}
	return rb, nil
}

// recBuf is a pooled record payload buffer.
type recBuf struct{ b []byte }

var recBufs = sync.Pool{New: func() any { return &recBuf{b: make([]byte, 0, 512)} }}

// free returns rb to the pool (large buffers are dropped). rb may be nil.
func (rb *recBuf) free() {
	if rb == nil {
		return
	}
	if cap(rb.b) > 64<<10 {
		rb.b = make([]byte, 0, 512)
	}
	rb.b = rb.b[:0]
	recBufs.Put(rb)
}

// Record framing: a 12-byte header, then the payload.
//
//	offset 0: uint32 LE  payload length
//	offset 4: uint32 LE  CRC-32C of bytes 0..3 (the length)
//	offset 8: uint32 LE  CRC-32C of the payload
//	offset 12: payload (JSON)
const (
	headerSize = 12
	// maxRecord bounds a record's payload; a larger length is corruption.
	maxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends payload, framed, to buf.
func appendFrame(buf, payload []byte) []byte {
	n := len(buf)
	buf = append(buf, make([]byte, headerSize)...) // in place: a local array would escape via crc32
	h := buf[n : n+headerSize]
	binary.LittleEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(h[0:4], castagnoli))
	binary.LittleEndian.PutUint32(h[8:], crc32.Checksum(payload, castagnoli))
	return append(buf, payload...)
}

// frameResult says what parseFrame found at an offset.
type frameResult int

const (
	frameOK      frameResult = iota
	frameShort               // the file ends inside the record (header or payload)
	frameBadHead             // the header's checksum does not match
	frameBadBody             // a whole record whose payload checksum does not match
)

// parseFrame reads the record at data[off:]. It returns the payload and the
// offset of the next record (also for frameBadBody).
func parseFrame(data []byte, off int) ([]byte, int, frameResult) {
	rest := data[off:]
	if len(rest) < headerSize {
		return nil, 0, frameShort
	}
	n := binary.LittleEndian.Uint32(rest[0:])
	if binary.LittleEndian.Uint32(rest[4:]) != crc32.Checksum(rest[0:4], castagnoli) || n > maxRecord {
		return nil, 0, frameBadHead
	}
	if uint64(len(rest)-headerSize) < uint64(n) {
		return nil, 0, frameShort
	}
	payload := rest[headerSize : headerSize+int(n)]
	if binary.LittleEndian.Uint32(rest[8:]) != crc32.Checksum(payload, castagnoli) {
		return nil, off + headerSize + int(n), frameBadBody
	}
	return payload, off + headerSize + int(n), frameOK
}

// validFrameAfter reports whether a whole, valid record starts anywhere in
// data after off: a bad header followed by one is corruption, not a torn
// tail.
func validFrameAfter(data []byte, off int) bool {
	for p := off + 1; p+headerSize <= len(data); p++ {
		if _, _, r := parseFrame(data, p); r == frameOK {
			return true
		}
	}
	return false
}

// ErrStoreClosed is returned by mutations (and Compact) after Close.
var ErrStoreClosed = errors.New("file store: closed")

// journal appends framed records to the current segment file. One writer
// goroutine takes every pending record, writes them with one write and
// makes them durable with one fsync (group commit), then wakes the callers
// waiting for them, and only them: each batch has a channel of its own,
// closed when it is durable, so a caller whose record is still pending is
// not woken by the fsync of the batch before.
type journal struct {
	mu       sync.Mutex
	work     *sync.Cond // signalled when records are pending or on close
	done     *sync.Cond // broadcast after each batch (and on failure or close)
	pending  []byte
	npending int
	spare    []byte
	seq      uint64 // sequence number of the last appended record
	writing  bool   // the writer holds a batch
	closing  bool
	err      error // sticky: a failed write or fsync poisons the journal
	f        *os.File
	segment  uint64
	size     int64 // bytes in the current segment
	durable  atomic.Uint64

	// pendingDone is closed once the pending records are durable (or the
	// journal failed); writingDone likewise for the batch being written,
	// whose last record is writingLast.
	pendingDone, writingDone chan struct{}
	writingLast              uint64

	// compaction trigger
	threshold int64
	onFull    func() // called (without j.mu) when size passes threshold

	records, fsyncs, bytes atomic.Int64
	exited                 chan struct{}

	// beforeWrite, when set (by tests, under mu), runs on the writer
	// before each batch is written.
	beforeWrite func()
}

func newJournal(f *os.File, segment uint64, size int64, threshold int64, onFull func()) *journal {
	j := &journal{f: f, segment: segment, size: size, threshold: threshold, onFull: onFull, exited: make(chan struct{})}
	j.work = sync.NewCond(&j.mu)
	j.done = sync.NewCond(&j.mu)
	go j.run()
	return j
}

// append queues payload and returns its sequence number. The caller holds
// the lock of the store the record belongs to, so records of one store are
// journalled in the order they are applied.
func (j *journal) append(payload []byte) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return 0, j.err
	}
	if j.closing {
		return 0, ErrStoreClosed
	}
	j.pending = appendFrame(j.pending, payload)
	j.npending++
	j.seq++
	if j.pendingDone == nil {
		j.pendingDone = make(chan struct{})
	}
	j.work.Signal()
	return j.seq, nil
}

// wait returns once record seq is durable, or the journal's error.
func (j *journal) wait(seq uint64) error {
	if j.durable.Load() >= seq {
		return nil
	}
	j.mu.Lock()
	for j.durable.Load() < seq && j.err == nil {
		ch := j.pendingDone
		if j.writing && seq <= j.writingLast {
			ch = j.writingDone
		}
		if ch == nil { // cannot happen: seq was appended and is not durable
			j.done.Wait()
			continue
		}
		j.mu.Unlock()
		<-ch
		j.mu.Lock()
	}
	defer j.mu.Unlock()
	if j.durable.Load() >= seq {
		return nil
	}
	return j.err
}

func (j *journal) run() {
	defer close(j.exited)
	j.mu.Lock()
	for {
		for j.npending == 0 && !j.closing && j.err == nil {
			j.work.Wait()
		}
		if j.err != nil || (j.npending == 0 && j.closing) {
			j.mu.Unlock()
			return
		}
		buf, n, last, f := j.pending, j.npending, j.seq, j.f
		j.pending, j.npending, j.spare = j.spare[:0], 0, nil
		j.writing, j.writingLast = true, last
		j.writingDone, j.pendingDone = j.pendingDone, nil
		hook := j.beforeWrite
		j.mu.Unlock()

		if hook != nil {
			hook()
		}
		_, err := f.Write(buf)
		if err == nil {
			err = f.Sync()
		}

		j.mu.Lock()
		j.writing = false
		if err != nil {
			j.err = fmt.Errorf("file store: journal %s: %w", f.Name(), err)
		} else {
			j.size += int64(len(buf))
			j.records.Add(int64(n))
			j.fsyncs.Add(1)
			j.bytes.Add(int64(len(buf)))
			j.durable.Store(last)
		}
		j.spare = buf[:0]
		if j.writingDone != nil {
			close(j.writingDone)
			j.writingDone = nil
		}
		if j.err != nil && j.pendingDone != nil {
			close(j.pendingDone) // never written: its waiters get j.err
			j.pendingDone = nil
		}
		j.done.Broadcast()
		if j.err == nil && j.threshold > 0 && j.size >= j.threshold && j.onFull != nil {
			go j.onFull()
		}
		// The writers just woken wait in this goroutine's processor's run
		// queue; the next write's fsync would hold that processor (a
		// goroutine in a system call keeps it until Go's monitor takes it
		// away, up to 10 ms later) and with it them, and any timer
		// goroutine queued behind them. Let them run first (with nothing
		// pending, the wait for work below parks this goroutine anyway).
		if j.npending > 0 {
			j.mu.Unlock()
			runtime.Gosched()
			j.mu.Lock()
		}
	}
}

// idle waits until nothing is pending or being written. The caller holds
// j.mu; it returns with j.mu held.
func (j *journal) idleLocked() error {
	for (j.npending > 0 || j.writing) && j.err == nil {
		j.done.Wait()
	}
	return j.err
}

// close lets the writer finish what is pending, stops it and closes the
// segment file.
func (j *journal) close() error {
	j.mu.Lock()
	j.closing = true
	j.work.Broadcast()
	j.mu.Unlock()
	<-j.exited
	j.mu.Lock()
	defer j.mu.Unlock()
	j.done.Broadcast()
	err := j.err
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
