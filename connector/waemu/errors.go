package waemu

import "errors"

// Errors returned by the emulator's control methods.
var (
	// ErrUnknownQR is returned by ScanQR when no open socket showed the QR's ref.
	ErrUnknownQR = errors.New("waemu: no socket is showing this QR code")
	// ErrQRMismatch is returned by ScanQR when the QR's keys don't match the socket that showed its ref.
	ErrQRMismatch = errors.New("waemu: QR code keys don't match the registering client")
	// ErrInvalidQR is returned by ScanQR when the string is not ref,noise,identity,adv.
	ErrInvalidQR = errors.New("waemu: malformed QR code")
	// ErrPairingInProgress is returned when a socket is already being paired.
	ErrPairingInProgress = errors.New("waemu: this socket is already being paired")
	// ErrNoPendingCode is returned by EnterPairCode when no socket requested a code for the phone.
	ErrNoPendingCode = errors.New("waemu: no pending pair code request for this phone")
	// ErrWrongCode is returned by EnterPairCode when the code does not match the client's.
	ErrWrongCode = errors.New("waemu: wrong pair code")
	// ErrPairRejected is returned when the client answered pair-success with an error.
	ErrPairRejected = errors.New("waemu: client rejected the pairing")
	// ErrSocketClosed is returned when the socket being paired closed before the pairing finished.
	ErrSocketClosed = errors.New("waemu: socket closed")
	// ErrUnknownDevice is returned when a JID names no registered device.
	ErrUnknownDevice = errors.New("waemu: unknown device")
	// ErrNotOnline is returned by the Push methods when the target has no authenticated socket.
	ErrNotOnline = errors.New("waemu: target has no open authenticated socket")
	// ErrNotRunning is returned by Start after Close, and by methods that need a running server.
	ErrNotRunning = errors.New("waemu: server is not running")
	// ErrAlreadyRunning is returned by Start when the server is already listening.
	ErrAlreadyRunning = errors.New("waemu: server is already running")
)
