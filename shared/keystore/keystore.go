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
