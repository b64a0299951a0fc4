package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Server is the slow model server of -h2c: an HTTP/2 server without TLS
// (prior knowledge, as Go's transport speaks it with unencrypted HTTP/2
// on) that writes its frames itself. net/http's server spent about as much
// CPU on 10,000 streams as the runtime spent on its whole run, and the two
// share the machine's cores here, where a provider's servers are elsewhere:
// this one holds no goroutine per stream and answers from one timer each.
//
// It answers POST /v1/chat/completions after the delay with a streamed
// reply (the first event flushed on its own, the rest in a second frame)
// and anything else with 404. It honours what the runtime's client sends
// (SETTINGS, PING, RST_STREAM, GOAWAY) and grants the client's request
// bodies all the window they need. Its replies are a few hundred bytes
// each, far inside the windows Go's client grants (4 MiB a stream, 1 GiB
// the connection), so it does not track them.
type h2Server struct {
	delay time.Duration
	// admit says whether a request may go on (false: 429, the rate limit);
	// started and ended count the requests that went on.
	admit          func() bool
	started, ended func()
	first, rest    []byte // the reply's events
	throttle       []byte // the body of a 429
}

// serve serves connections from ln until it is closed.
func (s *h2Server) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go s.conn(c)
	}
}

// h2Conn is one connection: frames go out under mu, through one HPACK
// encoder, as HTTP/2 wants.
type h2Conn struct {
	s    *h2Server
	mu   sync.Mutex
	bw   *bufio.Writer
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
	dead bool
	// live are the streams whose answer is still to come; a reset one is
	// forgotten, and its timer answers nothing.
	live map[uint32]*h2Stream
}

type h2Stream struct {
	method, path string
	timer        *time.Timer
}

func (s *h2Server) conn(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	c := &h2Conn{s: s, bw: bufio.NewWriterSize(nc, 64<<10), live: make(map[uint32]*h2Stream)}
	c.fr = http2.NewFramer(c.bw, br)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.write(func() error {
		if err := c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1000},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30},
		); err != nil {
			return err
		}
		return c.fr.WriteWindowUpdate(0, 1<<30)
	})
	defer c.close()
	var recv uint32 // body bytes since the last window update
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WritePing(true, f.Data) })
			}
		case *http2.MetaHeadersFrame:
			st := &h2Stream{method: f.PseudoValue("method"), path: f.PseudoValue("path")}
			c.mu.Lock()
			c.live[f.StreamID] = st
			c.mu.Unlock()
			if f.StreamEnded() {
				c.request(f.StreamID, st)
			}
		case *http2.DataFrame:
			// The body is read and dropped. The connection's window (a
			// gigabyte and more) is topped up now and then; each stream
			// has a gigabyte of its own.
			if recv += uint32(len(f.Data())); recv >= 1<<29 {
				n := recv
				recv = 0
				c.write(func() error { return c.fr.WriteWindowUpdate(0, n) })
			}
			if f.StreamEnded() {
				c.mu.Lock()
				st := c.live[f.StreamID]
				c.mu.Unlock()
				if st != nil {
					c.request(f.StreamID, st)
				}
			}
		case *http2.RSTStreamFrame:
			c.mu.Lock()
			if st := c.live[f.StreamID]; st != nil {
				delete(c.live, f.StreamID)
				if st.timer != nil && st.timer.Stop() {
					c.s.ended()
				}
			}
			c.mu.Unlock()
		case *http2.GoAwayFrame:
			return
		}
	}
}

// request answers a whole request: at once for a 404 or a 429, after the
// delay otherwise.
func (c *h2Conn) request(id uint32, st *h2Stream) {
	switch {
	case st.method != "POST" || st.path != "/v1/chat/completions":
		c.answer(id, "404", "text/plain", nil, []byte("not found\n"))
	case !c.s.admit():
		c.answer(id, "429", "application/json", []hpack.HeaderField{{Name: "retry-after", Value: "1"}}, c.s.throttle)
	default:
		c.s.started()
		c.mu.Lock()
		st.timer = time.AfterFunc(c.s.delay, func() {
			c.s.ended()
			c.answer(id, "200", "text/event-stream", nil, c.s.first, c.s.rest)
		})
		c.mu.Unlock()
	}
}

// answer writes a response: its headers and each of bodies as a DATA frame
// of its own, flushed one by one (the last ends the stream).
func (c *h2Conn) answer(id uint32, status, ctype string, extra []hpack.HeaderField, bodies ...[]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live[id] == nil || c.dead {
		return // reset by the client, or the connection is gone
	}
	delete(c.live, id)
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	_ = c.henc.WriteField(hpack.HeaderField{Name: "content-type", Value: ctype})
	for _, h := range extra {
		_ = c.henc.WriteField(h)
	}
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	for i, b := range bodies {
		if err == nil {
			err = c.fr.WriteData(id, i == len(bodies)-1, b)
		}
		if err == nil {
			err = c.bw.Flush()
		}
	}
	if err != nil {
		c.dead = true
	}
}

// write writes frames under the connection's lock and flushes them.
func (c *h2Conn) write(frames func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	if err := frames(); err != nil || c.bw.Flush() != nil {
		c.dead = true
	}
}

// close stops the timers of the streams still waiting.
func (c *h2Conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = true
	for id, st := range c.live {
		if st.timer != nil && st.timer.Stop() {
			c.s.ended()
		}
		delete(c.live, id)
	}
}
