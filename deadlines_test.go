package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testTick is the clock of the listeners under test.
const testTick = 20 * time.Millisecond

// lateBound is how late, at most, a test accepts a timeout: the tick plus
// a wide margin for a loaded machine. Early is never accepted.
const lateBound = 2 * time.Second

// listenPair returns a deadlineListener on loopback, the server side of
// one connection accepted by it, and the client side.
func listenPair(t *testing.T) (*deadlineListener, net.Conn, net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newDeadlineListener(raw, testTick)
	t.Cleanup(func() { l.Close() })
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return l, server, client
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A read blocked past its deadline fails with a timeout: not before the
// deadline, and within a tick or so after it.
func TestDeadlineConn_ReadExpires(t *testing.T) {
	_, server, client := listenPair(t)
	const after = 150 * time.Millisecond
	// Should the deadline never fire, the client's close ends the read.
	stop := time.AfterFunc(after+lateBound+time.Second, func() { client.Close() })
	defer stop.Stop()
	start := time.Now()
	server.SetReadDeadline(start.Add(after))
	_, err := server.Read(make([]byte, 1))
	took := time.Since(start)
	if !isTimeout(err) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if took < after || took > after+lateBound {
		t.Fatalf("the read failed after %s, want between %s and %s", took, after, after+lateBound)
	}
	// As with any expired deadline, later reads fail too, until it moves.
	if _, err := server.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("second read: %v, want a timeout", err)
	}
}

// A deadline moved before it passes does not fire.
func TestDeadlineConn_MovedDeadlineDoesNotFire(t *testing.T) {
	_, server, client := listenPair(t)
	server.SetReadDeadline(time.Now().Add(60 * time.Millisecond))
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	go func() {
		time.Sleep(300 * time.Millisecond) // many ticks past the first deadline
		client.Write([]byte("x"))
	}()
	if _, err := server.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read: %v, want the byte", err)
	}
}

// A deadline in the past interrupts a pending read at once (net/http does
// this to stop its background read), and clearing it lets the next read
// through.
func TestDeadlineConn_PastDeadlineInterrupts(t *testing.T) {
	_, server, client := listenPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // the read is pending
	server.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-errc:
		if !isTimeout(err) {
			t.Fatalf("read: %v, want a timeout", err)
		}
	case <-time.After(lateBound):
		t.Fatal("a past deadline did not interrupt the pending read")
	}
	server.SetReadDeadline(time.Time{})
	client.Write([]byte("x"))
	if _, err := server.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read after clearing the deadline: %v", err)
	}
}

// A write deadline that expired while nothing was written (a keep-alive
// connection between two answers) does not fail the write after it is
// moved forward.
func TestDeadlineConn_ExpiredDeadlineLiftedBySettingAnother(t *testing.T) {
	_, server, client := listenPair(t)
	server.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
	time.Sleep(200 * time.Millisecond) // expired by the clock
	if _, err := server.Write([]byte("a")); !isTimeout(err) {
		t.Fatalf("write past the deadline: %v, want a timeout", err)
	}
	server.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := server.Write([]byte("b")); err != nil {
		t.Fatalf("write after moving the deadline: %v", err)
	}
	got := make([]byte, 1)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "b" {
		t.Fatalf("client read %q, %v; want b", got, err)
	}
}

// Closed connections leave the clock, and the clock stops once the
// listener and its last connection are closed.
func TestDeadlineListener_ClockStops(t *testing.T) {
	l, server, _ := listenPair(t)
	server.Close()
	l.mu.Lock()
	n := len(l.conns)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d connections on the clock after the only one closed", n)
	}
	l.Close()
	before := l.now.Load()
	time.Sleep(10 * testTick)
	if after := l.now.Load(); after != before {
		// One tick may have been on its way; then it must be the last.
		time.Sleep(10 * testTick)
		if l.now.Load() != after {
			t.Fatal("the clock still ticks after the listener and its connections closed")
		}
	}
}

// Through net/http, with the server's own timeouts: a keep-alive
// connection answers again after an idle pause longer than the write
// timeout, is closed once idle past the idle timeout, and a client that
// never finishes its headers is cut after the header timeout.
func TestDeadlineListener_HTTPServerTimeouts(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newDeadlineListener(raw, testTick)
	const (
		writeTimeout = 100 * time.Millisecond
		idleTimeout  = 700 * time.Millisecond
		headerTime   = 200 * time.Millisecond
	)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: headerTime, ReadTimeout: 5 * time.Second, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout,
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := func(i int) {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	get(1)
	time.Sleep(3 * writeTimeout) // the write deadline of request 1 expires
	get(2)
	start := time.Now()
	c.SetReadDeadline(start.Add(idleTimeout + lateBound))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want the server to close it", err)
	}
	if took := time.Since(start); took < idleTimeout-writeTimeout {
		t.Fatalf("the idle connection was closed after %s, before the idle timeout %s", took, idleTimeout)
	}

	slow, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start = time.Now()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n") // never ends its headers
	slow.SetReadDeadline(start.Add(headerTime + lateBound))
	rest, err := io.ReadAll(slow)
	if isTimeout(err) {
		t.Fatalf("unfinished headers held the connection for %s (header timeout %s)", time.Since(start), headerTime)
	}
	if took := time.Since(start); took < headerTime {
		t.Fatalf("unfinished headers cut after %s, before the header timeout %s", took, headerTime)
	}
	if len(rest) > 0 && !strings.HasPrefix(string(rest), "HTTP/1.1 408") {
		t.Fatalf("unfinished headers answered %q", rest)
	}
}
