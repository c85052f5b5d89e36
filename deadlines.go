package main

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The HTTP servers' timeouts (header, read, write, idle) are deadlines that
// net/http sets on each connection four to six times per request. On a
// TCP connection each is a runtime timer moved in the poller: about 1 µs
// of every request, 5% of the cheapest answer's CPU. A deadlineListener
// keeps those deadlines itself instead: setting one only records it, and
// one clock goroutine per listener, ticking every deadlineTick, moves the
// deadline of each connection whose recorded deadline has passed into the
// past, which fails its pending and later reads (or writes) exactly as an
// expired deadline does. The timeouts therefore fire up to deadlineTick
// late, never early. A deadline set in the past (net/http does so to
// interrupt its background read) is applied at once.

// deadlineTick is how late a timeout may fire.
const deadlineTick = 250 * time.Millisecond

// expired is the deadline given to a connection whose time has passed: any
// time in the past fails its reads or writes at once.
var expired = time.Unix(1, 0)

// deadlineListener is a net.Listener whose connections keep their
// deadlines on its clock.
type deadlineListener struct {
	net.Listener
	tick time.Duration
	// now is the clock's last tick (unix nanoseconds): a deadline at or
	// before it is past.
	now atomic.Int64

	mu     sync.Mutex
	conns  map[*deadlineConn]struct{}
	closed bool // the listener is: the clock stops with its last connection
}

// newDeadlineListener wraps l; its clock runs until l is closed and its
// last connection too.
func newDeadlineListener(l net.Listener, tick time.Duration) *deadlineListener {
	dl := &deadlineListener{Listener: l, tick: tick, conns: make(map[*deadlineConn]struct{})}
	dl.now.Store(time.Now().UnixNano())
	go dl.run()
	return dl
}

// Accept returns the next connection, with its deadlines on the clock.
func (l *deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[dc] = struct{}{}
	l.mu.Unlock()
	return dc, nil
}

// Close stops accepting. The clock keeps the deadlines of the connections
// still open (a server shutting down lets them finish) until they close.
func (l *deadlineListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

// run is the clock: at each tick it expires the connections whose
// deadlines have passed.
func (l *deadlineListener) run() {
	t := time.NewTicker(l.tick)
	defer t.Stop()
	var due []*deadlineConn
	for now := range t.C {
		n := now.UnixNano()
		l.now.Store(n)
		l.mu.Lock()
		if l.closed && len(l.conns) == 0 {
			l.mu.Unlock()
			return
		}
		for c := range l.conns {
			due = append(due, c)
		}
		l.mu.Unlock()
		for _, c := range due {
			c.expire(n)
		}
		clear(due) // no reference to closed connections until the next tick
		due = due[:0]
	}
}

// deadline is one direction's deadline of a deadlineConn.
type deadline struct {
	at     int64 // unix nanoseconds; 0: none
	forced bool  // the connection's own deadline is set to expired
}

// deadlineConn is a connection of a deadlineListener. Its own (poller)
// deadline is either none or expired; the deadlines set on it are
// recorded in r and w.
type deadlineConn struct {
	net.Conn
	l *deadlineListener

	mu   sync.Mutex
	r, w deadline
}

// expire moves the connection's deadlines that have passed at now into
// the past (on a connection closed since the tick began, to no effect).
func (c *deadlineConn) expire(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.r.at != 0 && c.r.at <= now && !c.r.forced {
		c.r.forced = true
		c.Conn.SetReadDeadline(expired)
	}
	if c.w.at != 0 && c.w.at <= now && !c.w.forced {
		c.w.forced = true
		c.Conn.SetWriteDeadline(expired)
	}
}

// set records t as d; a t already past is applied at once, and a later
// one lifts an expiry applied before.
func (c *deadlineConn) set(d *deadline, t time.Time, apply func(time.Time) error) error {
	at := int64(0)
	if !t.IsZero() {
		at = t.UnixNano()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d.at = at
	switch {
	case at != 0 && at <= c.l.now.Load():
		d.forced = true
		return apply(t)
	case d.forced:
		d.forced = false
		return apply(time.Time{})
	}
	return nil
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	return c.set(&c.r, t, c.Conn.SetReadDeadline)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	return c.set(&c.w, t, c.Conn.SetWriteDeadline)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close closes the connection and takes it off the clock.
func (c *deadlineConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection, as net/http does before it
// closes one it answered with an error.
func (c *deadlineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom lets net/http copy a file to the connection with sendfile.
func (c *deadlineConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }
