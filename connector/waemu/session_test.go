package waemu

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"
)

func TestRestoreFromStore(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	path := dbPath(t, "restore")
	cli, _, jid := pairedClient(t, s, path)
	cli.Disconnect()
	waitFor(t, "socket closed", func() bool { return s.SocketsFor(jid) == 0 })

	dev, err := mustOpenStore(t, path).GetDevice(context.Background(), jid)
	if err != nil || dev == nil {
		t.Fatalf("GetDevice(%s) = %v, %v", jid, dev, err)
	}
	cli2, evts2 := newClient(t, s, dev)
	if err := cli2.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	evts2.waitEvent(t, "Connected", isType[*events.Connected])
	if devs := s.Devices(); len(devs) != 1 || devs[0].Logins != 2 || !devs[0].Online {
		t.Errorf("Devices() = %+v, want one online device with 2 logins", devs)
	}
}

func TestClientLogout(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, _, jid := pairedClient(t, s, dbPath(t, "logout"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if devs := s.Devices(); len(devs) != 0 {
		t.Errorf("Devices() after logout = %+v", devs)
	}
	if err := s.WaitSockets(ctx, func(n int) bool { return n == 0 }); err != nil {
		t.Errorf("sockets still open after logout: %d", s.Sockets())
	}
	if err := s.RemoveDevice(jid); err != ErrUnknownDevice {
		t.Errorf("RemoveDevice after logout = %v, want ErrUnknownDevice", err)
	}
}

func TestServerSideRemoval(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, evts, jid := pairedClient(t, s, dbPath(t, "removal"))
	if err := s.RemoveDevice(jid); err != nil {
		t.Fatalf("RemoveDevice: %v", err)
	}
	evt := evts.waitEvent(t, "LoggedOut", isType[*events.LoggedOut]).(*events.LoggedOut)
	// Close the client before the server does (as wago does): the pinned
	// whatsmeow races with itself (NoiseSocket.Stop writes OnDisconnect
	// without the lock FrameSocket.Close reads it under) when a client's
	// Disconnect meets a server-side close.
	cli.Disconnect()
	if evt.OnConnect {
		t.Error("LoggedOut.OnConnect = true, want false for a live socket")
	}
	waitFor(t, "sockets closed", func() bool { return s.Sockets() == 0 })
	if devs := s.Devices(); len(devs) != 0 {
		t.Errorf("Devices() after removal = %+v", devs)
	}
}

func TestRemovedDeviceRefusedOnConnect(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	path := dbPath(t, "refused")
	cli, _, jid := pairedClient(t, s, path)
	cli.Disconnect()
	if err := s.RemoveDevice(jid); err != nil {
		t.Fatalf("RemoveDevice: %v", err)
	}
	dev, err := mustOpenStore(t, path).GetDevice(context.Background(), jid)
	if err != nil || dev == nil {
		t.Fatalf("GetDevice(%s) = %v, %v", jid, dev, err)
	}
	cli2, evts2 := newClient(t, s, dev)
	if err := cli2.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	evt := evts2.waitEvent(t, "LoggedOut", isType[*events.LoggedOut]).(*events.LoggedOut)
	cli2.Disconnect() // before the server closes: see TestServerSideRemoval
	if !evt.OnConnect || evt.Reason != events.ConnectFailureLoggedOut {
		t.Errorf("LoggedOut = %+v, want OnConnect with reason 401", evt)
	}
	waitFor(t, "sockets closed", func() bool { return s.Sockets() == 0 })
}

func TestStopStartReconnect(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	addr := s.Addr()
	cli, evts, jid := pairedClient(t, s, dbPath(t, "restart"))
	s.Stop()
	if n := s.Sockets(); n != 0 {
		t.Errorf("Sockets() after Stop = %d", n)
	}
	evts.waitEvent(t, "Disconnected", isType[*events.Disconnected])
	if err := s.Start(); err != nil {
		t.Fatalf("Start again: %v", err)
	}
	if s.Addr() != addr {
		t.Errorf("Addr after restart = %s, want %s", s.Addr(), addr)
	}
	waitFor(t, "second Connected", func() bool { return evts.count(isType[*events.Connected]) >= 2 })
	if !cli.IsLoggedIn() || s.SocketsFor(jid) != 1 {
		t.Errorf("after restart: logged in %v, sockets %d", cli.IsLoggedIn(), s.SocketsFor(jid))
	}
	if devs := s.Devices(); len(devs) != 1 || devs[0].Logins != 2 {
		t.Errorf("Devices() = %+v", devs)
	}
}
