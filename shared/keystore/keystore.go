// Package keystore names what a connector needs of the store of
// whatsmeow's keys, apart from package shared so that the API (and its
// Lambda build) links none of whatsmeow.
package keystore

import (
	"context"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// Store holds the whatsmeow devices of every session: their identity
// keys and, through each *store.Device's sub-stores, the Signal sessions,
// pre-keys, app state and the rest of whatsmeow's store interfaces
// (go.mau.fi/whatsmeow/store). whatsmeow's sqlstore.Container (SQLite,
// PostgreSQL) implements it; so may any other engine that passes the
// contract suite in shared/keystoretest.
type Store interface {
	// PutDevice and DeleteDevice are what a *store.Device calls through
	// its Container field (Device.Save, Device.Delete).
	store.DeviceContainer
	// NewDevice returns a device with fresh keys, stored at its first
	// Save (once it has a JID).
	NewDevice() *store.Device
	// GetDevice returns the stored device with the AD-JID jid, or nil and
	// no error if there is none.
	GetDevice(ctx context.Context, jid types.JID) (*store.Device, error)
	// GetAllDevices returns every stored device.
	GetAllDevices(ctx context.Context) ([]*store.Device, error)
	// Close releases the store's connections.
	Close() error
}

// PreKeyCountIndex is the index that the SQL key stores (SQLite,
// PostgreSQL) add to whatsmeow's schema, after its own upgrade. At every
// connect whatsmeow counts a device's uploaded pre-keys
// (SELECT COUNT(*) FROM whatsmeow_pre_keys WHERE jid=$1 AND uploaded=true),
// and sessions are "connected" only after it. With the primary key
// (jid, key_id) alone, the count looks each of the device's ~812 rows up
// in the table for its uploaded flag: 60% of the CPU of a restore of 1,000
// sessions on SQLite, serialized on its one connection. The index covers
// the count, which then reads a few index pages.
const PreKeyCountIndex = `CREATE INDEX IF NOT EXISTS wago_pre_keys_uploaded ON whatsmeow_pre_keys (jid, uploaded)`
