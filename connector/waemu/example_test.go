package waemu_test

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/connector/waemu"
)

// Example shows how a whatsmeow client is pointed at the emulator, the way the product
// does it from WAGO_WHATSAPP_ADDR and WAGO_WHATSAPP_ROOT_KEY.
func Example() {
	srv, err := waemu.New(waemu.Config{})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()

	container, err := sqlstore.New(context.Background(), "sqlite", "file:/tmp/example.db?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)", waLog.Noop)
	if err != nil {
		panic(err)
	}
	cli := whatsmeow.NewClient(container.NewDevice(), waLog.Noop)

	// Keep socket.URL, swap the dialer (srv.Wire(cli) does the same).
	addr := srv.Addr()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, DialTLSContext: dial}}
	cli.SetPreLoginHTTPClient(hc)
	cli.SetWebsocketHTTPClient(hc)
	cli.SetMediaHTTPClient(hc)
	whatsmeow.WACertPubKey = srv.RootPublicKey() // process-global

	qrCh, _ := cli.GetQRChannel(context.Background())
	_ = cli.Connect()
	jid, err := srv.ScanQR(context.Background(), (<-qrCh).Code)
	fmt.Println(jid, err)
}
