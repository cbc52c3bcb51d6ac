// Command trickle-server is a small stand-alone trickle server for tests,
// benchmarks and the local dev flow. It speaks the same HTTP contract as the
// server go-livepeer mounts on orchestrators (trickle/trickle_server.go),
// which cannot be built here; see README.md beside this file for the details
// and the few differences.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// channelList collects repeated -channel flags.
type channelList []string

func (c *channelList) String() string     { return strings.Join(*c, ",") }
func (c *channelList) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	var (
		addr       = flag.String("addr", "127.0.0.1:0", "listen address; port 0 picks a free port")
		basePath   = flag.String("base-path", "/ai/trickle/", "path prefix of the channels (\"/\" for the root)")
		autocreate = flag.Bool("autocreate", false, "create a channel on its first POST (upstream default: off, orchestrators create channels themselves)")
		idle       = flag.Duration("idle-timeout", 5*time.Minute, "close channels with no new segment for this long")
		sweep      = flag.Duration("sweep-interval", 0, "how often to look for idle channels (default: min(1m, idle-timeout/2))")
		firstByte  = flag.Duration("first-byte-timeout", 10*time.Second, "send 100 Continue to a POST that has sent nothing for this long")
		verbose    = flag.Bool("v", false, "log every request (info level)")
		stdinEOF   = flag.Bool("exit-on-stdin-eof", false, "exit when stdin closes, so a crashed parent (a test run) never leaves the server behind")
		channels   channelList
	)
	flag.Var(&channels, "channel", "create this channel at startup, as an orchestrator would (repeatable; name or name=mime/type)")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))

	bp := *basePath
	if !strings.HasPrefix(bp, "/") {
		bp = "/" + bp
	}
	if !strings.HasSuffix(bp, "/") {
		bp += "/"
	}
	if *sweep <= 0 {
		*sweep = min(time.Minute, max(*idle/2, 10*time.Millisecond))
	}
	srv := newServer(config{
		BasePath:         bp,
		Autocreate:       *autocreate,
		IdleTimeout:      *idle,
		SweepInterval:    *sweep,
		FirstByteTimeout: *firstByte,
	})
	for _, c := range channels {
		name, mime, _ := strings.Cut(c, "=")
		srv.getOrCreate(name, mime, true)
	}
	mux := http.NewServeMux()
	srv.routes(mux)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "trickle-server: listen %s: %v\n", *addr, err)
		os.Exit(1)
	}
	bound := ln.Addr().String()
	// The one line on stdout: callers that asked for port 0 parse it.
	fmt.Printf("trickle-server listening addr=%s base_url=http://%s%s\n", bound, bound, bp)
	os.Stdout.Sync()

	done := make(chan struct{})
	go srv.runSweeper(done)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}

	stopCh := make(chan struct{}, 1)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		stopCh <- struct{}{}
	}()
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stopCh <- struct{}{}
		}()
	}
	go func() {
		<-stopCh
		close(done)
		// Closing the channels first ends streaming GETs and parked POSTs.
		srv.closeAll()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
		}
	}()
	if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "trickle-server: %v\n", err)
		os.Exit(1)
	}
}
