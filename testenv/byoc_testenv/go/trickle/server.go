package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names and the out-of-window status, as go-livepeer speaks them.
const (
	hdrSeq    = "Lp-Trickle-Seq"
	hdrLatest = "Lp-Trickle-Latest"
	hdrClosed = "Lp-Trickle-Closed"
	hdrReset  = "Lp-Trickle-Reset"

	statusOutOfWindow = 470
)

type config struct {
	// BasePath ends with "/"; channels live at BasePath+name.
	BasePath string
	// Autocreate creates a channel on the first POST to it. Upstream defaults
	// to false and orchestrators leave it off: they create channels in-process
	// before handing URLs to workers (see PUT below for our stand-in).
	Autocreate bool
	// IdleTimeout closes channels with no new segment for this long.
	IdleTimeout time.Duration
	// SweepInterval is how often idle channels are looked for.
	SweepInterval time.Duration
	// FirstByteTimeout is how long a pre-connected POST may send nothing
	// before the server answers 100 Continue as a keepalive (upstream: 10 s).
	FirstByteTimeout time.Duration
}

type server struct {
	cfg config

	mu       sync.RWMutex
	channels map[string]*channel
}

func newServer(cfg config) *server {
	return &server{cfg: cfg, channels: make(map[string]*channel)}
}

// routes registers the same routes as go-livepeer's ConfigureServer, plus
// PUT {base}{name}: a testenv-only stand-in for the orchestrator creating a
// channel in-process (upstream: TrickleLocalPublisher.CreateChannel).
func (s *server) routes(mux *http.ServeMux) {
	b := s.cfg.BasePath
	mux.HandleFunc("POST "+b+"{name}", s.handleCreate)
	mux.HandleFunc("PUT "+b+"{name}", s.handleForceCreate)
	mux.HandleFunc("GET "+b+"{name}/next", s.handleNext)
	mux.HandleFunc("GET "+b+"{name}/{seq}", s.handleGet)
	mux.HandleFunc("POST "+b+"{name}/{seq}", s.handlePost)
	mux.HandleFunc("DELETE "+b+"{name}/{seq}", s.handleCloseSegment)
	mux.HandleFunc("DELETE "+b+"{name}", s.handleDelete)
}

func (s *server) get(name string) *channel {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.channels[name]
}

// getOrCreate follows upstream getOrCreateStream: create only when forced or
// when autocreate is on; otherwise nil for an unknown channel.
func (s *server) getOrCreate(name, mimeType string, force bool) *channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[name]
	if ch == nil && (force || s.cfg.Autocreate) {
		ch = newChannel(name, mimeType)
		s.channels[name] = ch
		slog.Info("created channel", "channel", name)
	}
	return ch
}

// closeChannel closes and forgets a channel (upstream: closeStream).
func (s *server) closeChannel(name string) bool {
	s.mu.Lock()
	ch := s.channels[name]
	delete(s.channels, name)
	s.mu.Unlock()
	if ch == nil {
		return false
	}
	ch.close()
	slog.Info("closed channel", "channel", name)
	return true
}

// closeAll ends every channel at shutdown (upstream: clearAllStreams).
func (s *server) closeAll() {
	s.mu.Lock()
	chans := s.channels
	s.channels = make(map[string]*channel)
	s.mu.Unlock()
	for _, ch := range chans {
		ch.close()
	}
}

// sweepIdle closes channels whose last segment started more than IdleTimeout
// ago; names starting with "_" are internal and skipped (upstream:
// sweepIdleChannels).
func (s *server) sweepIdle(now time.Time) {
	s.mu.RLock()
	var idle []string
	for name, ch := range s.channels {
		if !strings.HasPrefix(name, "_") && now.Sub(ch.lastWrite()) > s.cfg.IdleTimeout {
			idle = append(idle, name)
		}
	}
	s.mu.RUnlock()
	for _, name := range idle {
		if s.closeChannel(name) {
			slog.Info("closed idle channel", "channel", name)
		}
	}
}

// runSweeper sweeps until done is closed (upstream: Server.Start).
func (s *server) runSweeper(done <-chan struct{}) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.sweepIdle(now)
		case <-done:
			return
		}
	}
}

// handleCreate: POST {base}{name}. Creates only with autocreate on, like
// upstream handleCreate; the mime type comes from Expect-Content.
func (s *server) handleCreate(w http.ResponseWriter, r *http.Request) {
	if s.getOrCreate(r.PathValue("name"), r.Header.Get("Expect-Content"), false) == nil {
		http.Error(w, "Stream not found", http.StatusNotFound)
	}
}

// handleForceCreate: PUT {base}{name}, not upstream (see routes).
func (s *server) handleForceCreate(w http.ResponseWriter, r *http.Request) {
	mime := r.Header.Get("Expect-Content")
	if mime == "" {
		mime = r.Header.Get("Content-Type")
	}
	s.getOrCreate(r.PathValue("name"), mime, true)
}

// handleDelete: DELETE {base}{name}. Unknown channel is 400, as upstream
// handleDelete answers "Invalid stream" with 400 rather than 404.
func (s *server) handleDelete(w http.ResponseWriter, r *http.Request) {
	if !s.closeChannel(r.PathValue("name")) {
		http.Error(w, "Invalid stream", http.StatusBadRequest)
	}
}

// handleCloseSegment: DELETE {base}{name}/{seq} closes one segment so its
// subscribers stop waiting; publishers call it for a dropped segment
// (upstream: closeSeq).
func (s *server) handleCloseSegment(w http.ResponseWriter, r *http.Request) {
	ch := s.get(r.PathValue("name"))
	if ch == nil {
		http.Error(w, "Stream not found", http.StatusNotFound)
		return
	}
	seq, err := strconv.Atoi(r.PathValue("seq"))
	if err != nil || seq < 0 {
		http.Error(w, "Invalid idx", http.StatusBadRequest)
		return
	}
	seg := ch.segmentAt(seq)
	if seg == nil {
		http.Error(w, "Nonexistent segment", http.StatusBadRequest)
		return
	}
	seg.close()
}

// handleNext: GET {base}{name}/next returns nextWrite in the body and in
// Lp-Trickle-Latest (upstream: handleNext).
func (s *server) handleNext(w http.ResponseWriter, r *http.Request) {
	ch := s.get(r.PathValue("name"))
	if ch == nil {
		http.Error(w, "Stream not found", http.StatusNotFound)
		return
	}
	next, closed := ch.state()
	w.Header().Set(hdrLatest, strconv.Itoa(next))
	if closed {
		w.Header().Set(hdrClosed, "terminated")
	}
	_, _ = io.WriteString(w, strconv.Itoa(next))
}

// parseSeq is strconv.Atoi, as upstream's handlers parse the seq.
func parseSeq(raw string) (int, bool) {
	seq, err := strconv.Atoi(raw)
	if err != nil {
		return 0, false
	}
	return seq, true
}

// ringPanic imitates upstream with a negative seq it has no special meaning
// for (below -1 on POST, below -2 on GET): it indexes its ring with it and
// panics, and net/http drops the connection without an answer
// (trickle_server.go getForWrite/getForRead).
func ringPanic(seq int) {
	panic(fmt.Sprintf("runtime error: index out of range [%d]", seq%ringSize))
}

// handlePost: POST {base}{name}/{seq} streams one segment (upstream:
// Server.handlePost + Stream.handlePost).
func (s *server) handlePost(w http.ResponseWriter, r *http.Request) {
	ch := s.getOrCreate(r.PathValue("name"), r.Header.Get("Content-Type"), false)
	if ch == nil {
		// Connection: close wakes up a pre-connected publisher (upstream comment).
		w.Header().Set("Connection", "close")
		http.Error(w, "Stream not found", http.StatusNotFound)
		return
	}
	seq, ok := parseSeq(r.PathValue("seq"))
	if !ok {
		http.Error(w, "Invalid idx", http.StatusBadRequest)
		return
	}
	if seq < -1 {
		ringPanic(seq)
	}
	seg := ch.forWrite(seq)
	if r.Header.Get(hdrReset) != "" {
		ch.closeBefore(seg.seq)
	}

	body := newBodyReader(r.Body)
	defer body.stop()

	total := 0
	started := time.Now()
	// Until the first byte, the publisher may be a pre-connect: keep it alive
	// with 100 Continue every FirstByteTimeout, and let it go (200, no body
	// read) if the segment or channel gets closed meanwhile (upstream:
	// timeoutReader + the FirstByteTimeout / io.EOF branches of handlePost).
	// After the first byte the body is simply read to the end.
	for {
		var res bodyChunk
		if total == 0 {
			select {
			case res = <-body.chunks:
			case <-seg.closedCh:
				s.answerEmpty(w, ch, seg)
				return
			case <-time.After(s.cfg.FirstByteTimeout):
				slog.Info("sending 100 Continue", "channel", ch.name, "seq", seg.seq)
				w.WriteHeader(http.StatusContinue)
				continue
			}
		} else {
			res = <-body.chunks
		}
		if len(res.data) > 0 {
			if total == 0 {
				started = time.Now()
				ch.markWriteStarted(seg.seq)
			}
			seg.write(res.data)
			total += len(res.data)
		}
		if res.err == io.EOF {
			break
		}
		if res.err != nil {
			// Upstream leaves the segment open on a broken upload: its
			// subscribers wait until it is closed or overwritten.
			slog.Info("POST body error", "channel", ch.name, "seq", seg.seq, "bytes", total, "err", res.err)
			http.Error(w, "Server error", http.StatusInternalServerError)
			return
		}
	}
	if total == 0 {
		// Empty body: the segment ends empty; nextWrite still advances so
		// clients do not stall on this seq (upstream: "increment seq anyway").
		s.answerEmpty(w, ch, seg)
		return
	}
	w.Header().Set(hdrSeq, strconv.Itoa(seg.seq))
	seg.close()
	slog.Info("POST complete", "channel", ch.name, "seq", seg.seq, "bytes", total, "took", time.Since(started))
}

// answerEmpty ends a POST that delivered no bytes: the segment is closed as
// empty, nextWrite moves past it, and Lp-Trickle-Closed tells a pre-connected
// publisher that the channel is gone (upstream: handlePost io.EOF branch).
func (s *server) answerEmpty(w http.ResponseWriter, ch *channel, seg *segment) {
	ch.markWriteStarted(seg.seq)
	_, closed := ch.state()
	w.Header().Set(hdrSeq, strconv.Itoa(seg.seq))
	if closed {
		w.Header().Set(hdrClosed, "terminated")
	}
	// We stop reading the body; closing the connection keeps net/http from
	// trying to drain an upload that may never end.
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	seg.close()
}

// handleGet: GET {base}{name}/{seq} streams one segment to a subscriber
// (upstream: Server.handleGet + Stream.handleGet).
func (s *server) handleGet(w http.ResponseWriter, r *http.Request) {
	ch := s.get(r.PathValue("name"))
	if ch == nil {
		http.Error(w, "Stream not found", http.StatusNotFound)
		return
	}
	seq, ok := parseSeq(r.PathValue("seq"))
	if !ok {
		http.Error(w, "Invalid idx", http.StatusBadRequest)
		return
	}
	if seq < -2 {
		ringPanic(seq)
	}
	res := ch.forRead(seq)
	if !res.exists {
		w.Header().Set(hdrLatest, strconv.Itoa(res.nextWrite))
		w.Header().Set(hdrSeq, strconv.Itoa(res.seq))
		if res.closed {
			// A closed channel answers 200 + Lp-Trickle-Closed, not 470.
			w.Header().Set(hdrClosed, "terminated")
		} else {
			w.WriteHeader(statusOutOfWindow)
		}
		_, _ = io.WriteString(w, "Entry not found")
		return
	}
	flusher, _ := w.(http.Flusher)
	seg := res.seg
	sent := 0
	for {
		data, eof, err := seg.readFrom(r.Context(), sent)
		if err != nil {
			slog.Info("subscriber went away", "channel", ch.name, "seq", seg.seq, "sent", sent)
			return
		}
		if len(data) > 0 {
			if sent == 0 {
				// Headers go out with the first bytes, so a subscriber that
				// gets headers always has data or a complete empty segment.
				if seg.seq != res.nextWrite {
					w.Header().Set(hdrLatest, strconv.Itoa(res.nextWrite))
				}
				w.Header().Set(hdrSeq, strconv.Itoa(seg.seq))
				// Even when empty, as upstream: an empty value also stops net/http sniffing one.
				w.Header().Set("Content-Type", ch.mimeType)
			}
			n, err := w.Write(data)
			sent += n
			if err != nil {
				slog.Info("write to subscriber failed", "channel", ch.name, "seq", seg.seq, "err", err)
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if eof {
			if sent == 0 {
				// Empty segment (dropped or closed with the channel): 200 with
				// no body; Lp-Trickle-Closed says whether the channel is over.
				next, closed := ch.state()
				w.Header().Set(hdrSeq, strconv.Itoa(seg.seq))
				w.Header().Set(hdrLatest, strconv.Itoa(next))
				if closed {
					w.Header().Set(hdrClosed, "terminated")
				}
			}
			return
		}
	}
}

// bodyChunk is one read from a POST body.
type bodyChunk struct {
	data []byte
	err  error
}

// bodyReader reads a request body on its own goroutine, so the handler can
// wait for the first byte with a timeout and a close signal (upstream:
// timeoutReader).
type bodyReader struct {
	chunks chan bodyChunk
	done   chan struct{}
}

func newBodyReader(body io.Reader) *bodyReader {
	br := &bodyReader{chunks: make(chan bodyChunk), done: make(chan struct{})}
	go func() {
		buf := make([]byte, 32*1024)
		for {
			n, err := body.Read(buf)
			c := bodyChunk{err: err}
			if n > 0 {
				c.data = append([]byte(nil), buf[:n]...)
				// Grow like upstream (doubling up to 1 MiB) for big segments.
				if n == len(buf) && len(buf) < 1<<20 {
					buf = make([]byte, 2*len(buf))
				}
			}
			if errors.Is(err, io.EOF) {
				c.err = io.EOF
			}
			select {
			case br.chunks <- c:
			case <-br.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return br
}

// stop releases the reader goroutine once the handler is done with it; a Read
// still blocked ends when net/http closes the connection.
func (br *bodyReader) stop() { close(br.done) }
