package connector

import (
	"reflect"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
)

// TestLighten: lighten finds whatsmeow's map of recent messages and
// replaces it by an empty one; it fails when a whatsmeow upgrade renames
// or retypes the field, so that the saving is not lost silently.
func TestLighten(t *testing.T) {
	cli := whatsmeow.NewClient(&store.Device{}, nil)
	before := reflect.ValueOf(cli).Elem().FieldByName("recentMessagesMap").Pointer()
	if !lighten(cli) {
		t.Fatal("whatsmeow.Client has no recentMessagesMap map any more: update lighten (memory.go)")
	}
	m := reflect.ValueOf(cli).Elem().FieldByName("recentMessagesMap")
	if m.IsNil() || m.Len() != 0 || m.Pointer() == before {
		t.Fatalf("recentMessagesMap not replaced by an empty map (nil %v, len %d)", m.IsNil(), m.Len())
	}
}
