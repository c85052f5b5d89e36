package e2e

import (
	"net"
	"sync"
	"testing"
)

// hangProxy stands between wago and the emulator and can freeze like a
// SIGSTOPped server: while frozen it still accepts TCP connections (the
// kernel would), but no byte moves in either direction, on new or existing
// connections, until Thaw.
type hangProxy struct {
	target string
	ln     net.Listener

	// mu guards frozen, thawed and conns.
	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed on Thaw
	conns  map[net.Conn]struct{}
}

// startHangProxy forwards a loopback port to target until the test ends.
func startHangProxy(t testing.TB, target string) *hangProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangProxy{target: target, ln: ln, thawed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.thawed)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's address.
func (p *hangProxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops every byte until Thaw.
func (p *hangProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen, p.thawed = true, make(chan struct{})
	}
}

// Thaw lets bytes move again.
func (p *hangProxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thawed)
	}
}

// gate returns a channel that is closed when bytes may move.
func (p *hangProxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.thawed
}

func (p *hangProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *hangProxy) close() {
	p.ln.Close()
	p.Thaw()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *hangProxy) serve(c net.Conn) {
	p.track(c)
	<-p.gate()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.track(up)
	go p.pipe(up, c)
	p.pipe(c, up)
}

// pipe copies src to dst, holding each chunk while the proxy is frozen.
func (p *hangProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
