package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// encoder writes one value of a stream: an NDJSON line or a server-sent
// event.
type encoder interface {
	Encode(v any) error
}

// stream is a response that sends values as they come: NDJSON, or
// server-sent events when the client asks for text/event-stream (a
// browser's EventSource does).
type stream struct {
	w   http.ResponseWriter
	bw  *bufio.Writer
	enc encoder
}

// wantsSSE reports whether the request asks for server-sent events.
func wantsSSE(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func startStream(w http.ResponseWriter, sse bool) *stream {
	s := &stream{w: w, bw: bufio.NewWriter(w)}
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		s.enc = sseEncoder{s.bw}
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
		s.enc = json.NewEncoder(s.bw)
	}
	w.WriteHeader(http.StatusOK)
	return s
}

func (s *stream) flush() {
	s.bw.Flush()
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// sseEncoder writes each value as one event's data (JSON has no newline
// in it: one data line).
type sseEncoder struct{ w *bufio.Writer }

func (e sseEncoder) Encode(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return err
	}
	return nil
}

// Changed is one event of GET /v1/events: the threads that changed since
// the last one (their status, history or children), or Many when more
// changed than one event lists.
type Changed struct {
	Threads []infinity.ThreadID `json:"threads,omitempty"`
	Many    bool                `json:"many,omitempty"`
}

// eventGap spaces the events of GET /v1/events: changes in between are
// merged into one.
const eventGap = 200 * time.Millisecond

// getEvents streams which threads change, as server-sent events (or
// NDJSON), for views of many threads such as the web UI's list: each
// event names the threads to read again. As server-sent events, a comment
// every 15 s keeps proxies from closing an idle stream.
func (d *Daemon) getEvents(w http.ResponseWriter, r *http.Request) error {
	wt, cancel := d.hub.watch()
	defer cancel()
	s := startStream(w, wantsSSE(r))
	if err := s.enc.Encode(Changed{}); err != nil { // says the stream is open
		return nil
	}
	s.flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-wt.poked:
			ids, many := wt.take()
			if s.enc.Encode(Changed{Threads: ids, Many: many}) != nil {
				return nil
			}
			s.flush()
			select { // merge what comes in the gap
			case <-time.After(eventGap):
			case <-r.Context().Done():
				return nil
			case <-d.hub.done:
				return nil
			}
		case <-keep.C:
			if _, ok := s.enc.(sseEncoder); ok {
				s.bw.WriteString(": keep-alive\n\n")
				s.flush()
			}
		case <-r.Context().Done():
			return nil
		case <-d.hub.done:
			return nil
		}
	}
}
