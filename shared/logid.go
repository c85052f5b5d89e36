package shared

import (
	"crypto/sha256"
	"encoding/hex"
)

// LogID returns a short, stable, non-reversible name for a token, for logs:
// tokens are credentials and never appear in logs themselves.
func LogID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "s-" + hex.EncodeToString(sum[:5])
}
