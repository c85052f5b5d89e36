package waemu

import (
	"fmt"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

const (
	// intermediateSerial is the serial number of the emulator's intermediate certificate.
	intermediateSerial = 1
	// leafSerial is the serial number of the emulator's leaf (server static key) certificate.
	leafSerial = 2
	// certValidity is how long the generated certificates are valid.
	certValidity = 10 * 365 * 24 * time.Hour
)

// clampedKeyPair returns the Curve25519 key pair for a private seed, clamped as libsignal expects.
func clampedKeyPair(seed [32]byte) *keys.KeyPair {
	seed[0] &= 248
	seed[31] &= 127
	seed[31] |= 64
	return keys.NewKeyPairFromPrivateKey(seed)
}

// sign returns the 64-byte XEdDSA signature of msg by kp.
func sign(kp *keys.KeyPair, msg []byte) []byte {
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*kp.Priv), msg)
	return sig[:]
}

// verify checks a 64-byte XEdDSA signature of msg by pub.
func verify(pub []byte, msg, sig []byte) bool {
	if len(pub) != 32 || len(sig) != 64 {
		return false
	}
	return ecc.VerifySignature(ecc.NewDjbECPublicKey([32]byte(pub)), msg, [64]byte(sig))
}

// buildCertChain makes the Noise certificate chain whatsmeow verifies in its handshake:
// an intermediate certificate signed by the root key and a leaf certificate for the
// server's static Noise key signed by the intermediate key.
func buildCertChain(root, static *keys.KeyPair) ([]byte, error) {
	intermediate := keys.NewKeyPair()
	now := time.Now()
	notBefore := uint64(now.Add(-time.Hour).Unix())
	notAfter := uint64(now.Add(certValidity).Unix())
	interDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial),
		IssuerSerial: proto.Uint32(0),
		Key:          intermediate.Pub[:],
		NotBefore:    proto.Uint64(notBefore),
		NotAfter:     proto.Uint64(notAfter),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to marshal intermediate certificate: %w", err)
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(leafSerial),
		IssuerSerial: proto.Uint32(intermediateSerial),
		Key:          static.Pub[:],
		NotBefore:    proto.Uint64(notBefore),
		NotAfter:     proto.Uint64(notAfter),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to marshal leaf certificate: %w", err)
	}
	chain, err := proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: interDetails, Signature: sign(root, interDetails)},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: sign(intermediate, leafDetails)},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to marshal certificate chain: %w", err)
	}
	return chain, nil
}
