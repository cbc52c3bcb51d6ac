package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newTestServer(t *testing.T, cfg config) (*server, string) {
	t.Helper()
	if cfg.BasePath == "" {
		cfg.BasePath = "/ai/trickle/"
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.FirstByteTimeout == 0 {
		cfg.FirstByteTimeout = 10 * time.Second
	}
	s := newServer(cfg)
	mux := http.NewServeMux()
	s.routes(mux)
	hs := httptest.NewServer(mux)
	done := make(chan struct{})
	go s.runSweeper(done)
	t.Cleanup(func() {
		close(done)
		s.closeAll()
		hs.Close()
	})
	return s, hs.URL + cfg.BasePath
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "video/mp2t", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestPublishThenRead(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true})
	for i := 0; i < 3; i++ {
		resp := post(t, fmt.Sprintf("%sch/%d", base, i), fmt.Sprintf("seg%d", i))
		if resp.StatusCode != 200 || resp.Header.Get(hdrSeq) != strconv.Itoa(i) {
			t.Fatalf("post %d: %d %q", i, resp.StatusCode, resp.Header.Get(hdrSeq))
		}
	}
	for i := 0; i < 3; i++ {
		resp, body := get(t, fmt.Sprintf("%sch/%d", base, i))
		if resp.StatusCode != 200 || body != fmt.Sprintf("seg%d", i) || resp.Header.Get(hdrSeq) != strconv.Itoa(i) {
			t.Fatalf("get %d: %d %q", i, resp.StatusCode, body)
		}
		if resp.Header.Get("Content-Type") != "video/mp2t" {
			t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
		}
	}
	// -2 is the most recent segment, -1 waits for the next one.
	resp, body := get(t, base+"ch/-2")
	if body != "seg2" || resp.Header.Get(hdrSeq) != "2" {
		t.Fatalf("-2: %q %q", body, resp.Header.Get(hdrSeq))
	}
	resp, body = get(t, base+"ch/next")
	if body != "3" || resp.Header.Get(hdrLatest) != "3" {
		t.Fatalf("next: %q", body)
	}
}

func TestAutocreateOffNeedsCreation(t *testing.T) {
	_, base := newTestServer(t, config{})
	if resp := post(t, base+"ch/0", "x"); resp.StatusCode != 404 {
		t.Fatalf("post to unknown channel: %d", resp.StatusCode)
	}
	if resp := post(t, base+"ch", ""); resp.StatusCode != 404 {
		t.Fatalf("create without autocreate: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("PUT", base+"ch", nil)
	req.Header.Set("Expect-Content", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("put: %v %v", err, resp)
	}
	if resp := post(t, base+"ch/0", "x"); resp.StatusCode != 200 {
		t.Fatalf("post after create: %d", resp.StatusCode)
	}
	if r, _ := get(t, base+"ch/0"); r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("mime from creation expected, got %q", r.Header.Get("Content-Type"))
	}
}

func TestUnknownChannel404(t *testing.T) {
	_, base := newTestServer(t, config{})
	if r, _ := get(t, base+"nope/0"); r.StatusCode != 404 {
		t.Fatalf("get: %d", r.StatusCode)
	}
	req, _ := http.NewRequest("DELETE", base+"nope", nil)
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != 400 {
		t.Fatalf("delete unknown: %d (upstream answers 400)", resp.StatusCode)
	}
}

// A subscriber of a segment in progress gets what was written, then the rest.
func TestWriteThrough(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true})
	pr, pw := io.Pipe()
	postDone := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(base+"ch/0", "video/mp2t", pr)
		if err != nil {
			t.Error(err)
		}
		postDone <- resp
	}()
	pw.Write([]byte("first-"))
	time.Sleep(50 * time.Millisecond)

	resp, err := http.Get(base + "ch/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first-" {
		t.Fatalf("early bytes: %q %v", buf, err)
	}
	pw.Write([]byte("second"))
	pw.Close()
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second" {
		t.Fatalf("rest: %q", rest)
	}
	if r := <-postDone; r == nil || r.StatusCode != 200 {
		t.Fatalf("post: %v", r)
	}
}

// GET -1 waits for the next segment; the live edge.
func TestLiveEdgeWaits(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true})
	post(t, base+"ch/0", "old")
	got := make(chan string, 1)
	go func() {
		r, body := get(t, base+"ch/-1")
		got <- r.Header.Get(hdrSeq) + ":" + body
	}()
	time.Sleep(50 * time.Millisecond)
	post(t, base+"ch/1", "new")
	if g := <-got; g != "1:new" {
		t.Fatalf("got %q", g)
	}
}

func TestOutOfWindow470(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true})
	for i := 0; i < 8; i++ {
		post(t, fmt.Sprintf("%sch/%d", base, i), "x")
	}
	r, _ := get(t, base+"ch/1")
	if r.StatusCode != 470 || r.Header.Get(hdrLatest) != "8" {
		t.Fatalf("old seq: %d latest=%q", r.StatusCode, r.Header.Get(hdrLatest))
	}
	r, _ = get(t, base+"ch/20")
	if r.StatusCode != 470 {
		t.Fatalf("future seq: %d", r.StatusCode)
	}
	if r, _ := get(t, base+"ch/3"); r.StatusCode != 200 {
		t.Fatalf("in-window seq: %d", r.StatusCode)
	}
}

func TestDeleteEndsWaitersAndPreconnects(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true})
	post(t, base+"ch/0", "x")

	// a subscriber parked on the next segment
	sub := make(chan *http.Response, 1)
	go func() {
		r, _ := get(t, base+"ch/1")
		sub <- r
	}()
	// a publisher pre-connected to seq 1 with no bytes yet
	pr, pw := io.Pipe()
	defer pw.Close()
	pub := make(chan *http.Response, 1)
	go func() {
		r, err := http.Post(base+"ch/1", "video/mp2t", pr)
		if err != nil {
			t.Error(err)
		}
		pub <- r
	}()
	time.Sleep(100 * time.Millisecond)

	req, _ := http.NewRequest("DELETE", base+"ch", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete: %v %v", err, resp)
	}
	select {
	case r := <-sub:
		if r.StatusCode != 200 || r.Header.Get(hdrClosed) != "terminated" {
			t.Fatalf("subscriber: %d closed=%q", r.StatusCode, r.Header.Get(hdrClosed))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("subscriber not released")
	}
	select {
	case r := <-pub:
		if r == nil || r.StatusCode != 200 || r.Header.Get(hdrClosed) != "terminated" {
			t.Fatalf("publisher: %v", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("pre-connected publisher not released")
	}
	if r, _ := get(t, base+"ch/0"); r.StatusCode != 404 {
		t.Fatalf("after delete: %d", r.StatusCode)
	}
}

func TestIdleSweep(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true, IdleTimeout: 100 * time.Millisecond, SweepInterval: 20 * time.Millisecond})
	post(t, base+"ch/0", "x")
	time.Sleep(300 * time.Millisecond)
	if r, _ := get(t, base+"ch/0"); r.StatusCode != 404 {
		t.Fatalf("idle channel still there: %d", r.StatusCode)
	}
}

// A POST that sends nothing gets 100 Continue keepalives, then works normally.
func TestContinueKeepalive(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true, FirstByteTimeout: 50 * time.Millisecond})
	addr := strings.TrimPrefix(strings.SplitN(base, "/ai/", 2)[0], "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /ai/trickle/ch/0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("expected 100 Continue, got %q %v", line, err)
	}
	fmt.Fprintf(conn, "5\r\nhello\r\n0\r\n\r\n")
	for {
		line, err = br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "HTTP/1.1 200") {
			break
		}
	}
	if _, body := get(t, base+"ch/0"); body != "hello" {
		t.Fatalf("body %q", body)
	}
}

func TestCloseSegmentAndEmptySegment(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true})
	post(t, base+"ch/0", "x")
	got := make(chan *http.Response, 1)
	go func() {
		r, body := get(t, base+"ch/1")
		if body != "" {
			t.Errorf("body %q", body)
		}
		got <- r
	}()
	time.Sleep(50 * time.Millisecond)
	req, _ := http.NewRequest("DELETE", base+"ch/1", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete seq: %v %v", err, resp)
	}
	r := <-got
	if r.StatusCode != 200 || r.Header.Get(hdrSeq) != "1" || r.Header.Get(hdrClosed) != "" {
		t.Fatalf("empty segment: %d %v", r.StatusCode, r.Header)
	}
	// empty POST closes its segment empty and advances the write head
	if resp := post(t, base+"ch/2", ""); resp.StatusCode != 200 || resp.Header.Get(hdrSeq) != "2" {
		t.Fatalf("empty post: %d", resp.StatusCode)
	}
	if _, body := get(t, base+"ch/next"); body != "3" {
		t.Fatalf("next after empty post: %q", body)
	}
}

func TestPostNextSeqAndRootBasePath(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true, BasePath: "/"})
	for i := 0; i < 3; i++ {
		resp := post(t, base+"ch/-1", "x")
		if resp.Header.Get(hdrSeq) != strconv.Itoa(i) {
			t.Fatalf("post -1 #%d got seq %q", i, resp.Header.Get(hdrSeq))
		}
	}
	// Upstream panics on these; net/http drops the connection without an answer.
	for _, bad := range []string{"GET -3", "POST -2"} {
		method, seq, _ := strings.Cut(bad, " ")
		req, _ := http.NewRequest(method, base+"ch/"+seq, strings.NewReader("x"))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("%s answered %d; upstream drops the connection", bad, resp.StatusCode)
		}
	}
	if r, _ := get(t, base+"ch/x"); r.StatusCode != 400 {
		t.Fatalf("unparsable seq: %d", r.StatusCode)
	}
}

func TestContentTypeIsSentEvenWhenTheChannelHasNone(t *testing.T) {
	_, base := newTestServer(t, config{Autocreate: true})
	req, _ := http.NewRequest("POST", base+"plain/-1", strings.NewReader("<html>not sniffed</html>"))
	resp, err := http.DefaultClient.Do(req) // no Content-Type: a channel without a mime type
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, _ := get(t, base+"plain/0")
	values, present := r.Header["Content-Type"]
	if !present || len(values) != 1 || values[0] != "" {
		t.Fatalf("Content-Type %q (present %v); upstream sends it empty", values, present)
	}
}
