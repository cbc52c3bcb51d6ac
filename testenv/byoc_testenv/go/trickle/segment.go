package main

import (
	"context"
	"sync"
)

// segment is one trickle segment: an append-only byte buffer that any number of
// subscribers read from while the publisher is still writing it.
//
// Behaviour follows go-livepeer trickle/trickle_server.go (Segment, writeData,
// readData, close) and trickle/segment_buffer.go: a subscriber that arrives
// mid-segment gets every byte written so far, then the rest live, then EOF
// when the segment is closed. The storage here is a plain slice: bytes below
// len(data) are never modified again, so a reader can keep a sub-slice and
// write it to the network outside the lock even if a later append reallocates.
type segment struct {
	seq int

	mu     sync.Mutex
	cond   *sync.Cond
	data   []byte
	closed bool

	// closedCh is closed together with the segment; it wakes a pre-connected
	// publisher that has not sent its first byte yet (upstream: Segment.closeCh).
	closedCh chan struct{}
}

func newSegment(seq int) *segment {
	s := &segment{seq: seq, closedCh: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// write appends publisher bytes and wakes waiting readers (upstream: writeData).
func (s *segment) write(p []byte) {
	s.mu.Lock()
	s.data = append(s.data, p...)
	s.cond.Broadcast()
	s.mu.Unlock()
}

// close marks the segment complete; idempotent (upstream: Segment.close).
func (s *segment) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closedCh)
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

// isFresh reports whether nothing was written yet and the segment is open
// (upstream: Segment.isFresh).
func (s *segment) isFresh() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && len(s.data) == 0
}

// readFrom blocks until bytes past pos exist or the segment is closed. It
// returns the available bytes (nil at the end), and eof=true once the reader
// has everything the segment will ever hold (upstream: readData).
//
// Unlike upstream, a cancelled ctx (the subscriber went away) wakes the wait,
// so abandoned GETs do not park a goroutine until the segment is written.
func (s *segment) readFrom(ctx context.Context, pos int) (data []byte, eof bool, err error) {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()

	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if pos < len(s.data) {
			data = s.data[pos:len(s.data):len(s.data)]
			return data, s.closed, nil
		}
		if s.closed {
			return nil, true, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		s.cond.Wait()
	}
}
