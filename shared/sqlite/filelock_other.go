//go:build !unix

package sqlite

import "context"

// lockFile does nothing where flock(2) does not exist: processes that
// create one key store at once may race on its schema there.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
