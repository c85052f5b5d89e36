package shared

import (
	"errors"
	"fmt"
)

// Error codes. Each says what kind of failure happened; the HTTP layer maps
// codes to statuses (functions.statusFor) and never shows an internal error's
// cause to a client.
const (
	EINVALID      = "invalid"      // the request is malformed or a field is wrong
	EUNAUTHORIZED = "unauthorized" // missing or wrong credentials
	ENOTFOUND     = "not_found"    // the thing asked for does not exist
	ECONFLICT     = "conflict"     // the session is in a state that forbids the operation
	EEXISTS       = "exists"       // a unique Name or Token is taken (WaGo answers 500)
	ETOOLARGE     = "too_large"    // the request body is over the limit
	EUNAVAILABLE  = "unavailable"  // a dependency (connector, Redis, store, WhatsApp) cannot be reached
	ETIMEOUT      = "timeout"      // the operation did not finish in time
	EINTERNAL     = "internal"     // anything else: logged, never shown
)

// Error is a failure with a code and a message that is safe to show to the
// client. Err, when set, is the internal cause: it is logged, never returned.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error implements the error interface; it includes the internal cause so
// that logs carry it.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message whose internal cause is err.
func Wrap(err error, code, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(*Error); ok { // the common case, without errors.As's allocation
		return e.Code
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, and a generic message for any other error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(*Error); ok {
		return e.Message
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Messages that WaGo documents and clients match on.
const (
	MsgInvalidToken      = "invalid token"
	MsgInvalidAdminToken = "invalid admin token"
	MsgNoSession         = "No session"
	MsgNotLoggedIn       = "not logged in"
	MsgAlreadyExists     = "token or name already exists"
	MsgAlreadyLoggedIn   = "already logged in"
)

// Sentinel errors shared by the store and connector implementations.
var (
	ErrSessionNotFound = Errorf(ENOTFOUND, MsgInvalidToken)
	ErrAlreadyExists   = Errorf(EEXISTS, MsgAlreadyExists)
	ErrNoSession       = Errorf(ECONFLICT, MsgNoSession)
	ErrNotLoggedIn     = Errorf(ECONFLICT, MsgNotLoggedIn)
	ErrAlreadyLoggedIn = Errorf(ECONFLICT, MsgAlreadyLoggedIn)
)
