package connector

import (
	"reflect"
	"unsafe"

	"go.mau.fi/whatsmeow"
)

// What a session costs in memory. Heap profile of 1,000 idle restored
// sessions (BenchmarkSessions): of about 104 KiB live per session, 78 KiB
// are what whatsmeow.NewClient allocates up front: the Client itself
// (23 KiB, mostly its ring of 256 recent-message keys), the handler queue
// (a channel of 2,048 nodes, 16 KiB) and the map of recent messages,
// created for 256 entries (40 KiB); then the websocket's bufio reader and
// writer (9 KiB), four goroutines (16 KiB of stacks), the Noise ciphers
// and our own session (a few KiB).

// lighten replaces the map of recent messages that whatsmeow.NewClient
// creates sized for 256 entries by an empty one, which grows with the
// messages that the session really sends: whatsmeow only indexes and
// deletes in it (retry.go), so it behaves the same, and an idle session
// saves 40 KiB. It is a field that whatsmeow does not export: lighten
// reports false, changing nothing, if the pinned whatsmeow no longer has
// it as a map (TestLighten fails then). It must run before the client
// connects.
func lighten(cli *whatsmeow.Client) bool {
	f := reflect.ValueOf(cli).Elem().FieldByName("recentMessagesMap")
	if !f.IsValid() || f.Kind() != reflect.Map {
		return false
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.MakeMap(f.Type()))
	return true
}
