package main

import (
	"sync"
	"time"
)

// ringSize is how many segments a channel keeps for subscribers to catch up
// on (upstream: maxSegmentsPerStream = 5).
const ringSize = 5

// channel is a named stream of segments (upstream: Stream).
type channel struct {
	name     string
	mimeType string

	mu        sync.Mutex
	ring      [ringSize]*segment
	nextWrite int       // seq after the newest segment that received bytes
	writeTime time.Time // last time a segment started; drives the idle sweep
	closed    bool
}

func newChannel(name, mimeType string) *channel {
	return &channel{name: name, mimeType: mimeType, writeTime: time.Now()}
}

// slot maps a seq onto the ring. Negative seqs never reach it: -1/-2 are
// resolved first, other negatives are rejected by the handlers (upstream would
// index the ring with them and panic).
func slot(seq int) int { return seq % ringSize }

// forWrite returns the segment a POST writes into (upstream: Stream.getForWrite).
// -1 means "next" (nextWrite). A segment already in the slot with the same seq
// (for instance pre-created by a waiting subscriber) is reused; anything else in
// the slot is an old segment that falls out of the window and gets closed.
func (c *channel) forWrite(seq int) *segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq == -1 {
		seq = c.nextWrite
	}
	i := slot(seq)
	if seg := c.ring[i]; seg != nil {
		if seg.seq == seq {
			return seg
		}
		seg.close()
	}
	seg := newSegment(seq)
	c.ring[i] = seg
	return seg
}

// markWriteStarted records that segment seq received its first byte (or ended
// empty): from now on -1 means seq+1 (upstream: handlePost updates nextWrite).
func (c *channel) markWriteStarted(seq int) {
	c.mu.Lock()
	c.nextWrite = seq + 1
	c.writeTime = time.Now()
	c.mu.Unlock()
}

// closeBefore closes every segment older than seq; used for Lp-Trickle-Reset
// so subscribers stuck on a dead publisher's segment are released, while
// pre-connected (newer) segments survive (upstream: Stream.handlePost).
func (c *channel) closeBefore(seq int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, seg := range c.ring {
		if seg != nil && seg.seq < seq {
			seg.close()
		}
	}
}

// readResult is what a GET resolves to (upstream: Stream.getForRead).
type readResult struct {
	seg       *segment // nil or a different seq when !exists
	seq       int      // the seq actually looked up (-1/-2 resolved)
	nextWrite int
	exists    bool
	closed    bool
}

// forRead resolves a GET seq (upstream: Stream.getForRead): -1 is the next
// segment to be written (the live edge), -2 the segment in progress (or the
// most recent one). A read for exactly the next seq - or for seq 1 before
// anything was written, a grace for races at stream start - pre-creates the
// segment so the subscriber waits for it instead of getting 470.
func (c *channel) forRead(seq int) readResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch seq {
	case -1:
		seq = c.nextWrite
	case -2:
		seq = max(c.nextWrite-1, 0)
	}
	i := slot(seq)
	seg := c.ring[i]
	exists := seg != nil && seg.seq == seq
	if !exists && !c.closed && (seq == c.nextWrite || (c.nextWrite == 0 && seq == 1)) {
		seg = newSegment(seq)
		c.ring[i] = seg
		exists = true
	}
	return readResult{seg: seg, seq: seq, nextWrite: c.nextWrite, exists: exists, closed: c.closed}
}

// state returns nextWrite and closed under the lock.
func (c *channel) state() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextWrite, c.closed
}

// segmentAt returns the segment with exactly this seq, or nil.
func (c *channel) segmentAt(seq int) *segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	seg := c.ring[slot(seq)]
	if seg == nil || seg.seq != seq {
		return nil
	}
	return seg
}

// close closes every segment, which ends waiting subscribers and wakes
// pre-connected publishers, and marks the channel closed (upstream: Stream.close).
func (c *channel) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, seg := range c.ring {
		seg.close()
		c.ring[i] = nil
	}
	c.closed = true
}

func (c *channel) lastWrite() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeTime
}
