package waemu

import (
	"bytes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
)

// noiseState is the server side of the Noise_XX_25519_AESGCM_SHA256 handshake state,
// mirroring socket.NoiseHandshake of whatsmeow.
type noiseState struct {
	hash    []byte
	salt    []byte
	key     cipher.AEAD
	counter uint32
}

func newNoiseState(header []byte) (*noiseState, error) {
	ns := &noiseState{}
	pattern := []byte(socket.NoiseStartPattern)
	if len(pattern) == 32 {
		ns.hash = pattern
	} else {
		h := sha256.Sum256(pattern)
		ns.hash = h[:]
	}
	ns.salt = ns.hash
	var err error
	if ns.key, err = gcmutil.Prepare(ns.hash); err != nil {
		return nil, err
	}
	ns.authenticate(header)
	return ns, nil
}

func (ns *noiseState) authenticate(data []byte) {
	h := sha256.Sum256(append(append([]byte{}, ns.hash...), data...))
	ns.hash = h[:]
}

func (ns *noiseState) nextIV() []byte {
	iv := generateIV(ns.counter)
	ns.counter++
	return iv
}

func (ns *noiseState) encrypt(plaintext []byte) []byte {
	ct := ns.key.Seal(nil, ns.nextIV(), plaintext, ns.hash)
	ns.authenticate(ct)
	return ct
}

func (ns *noiseState) decrypt(ciphertext []byte) ([]byte, error) {
	pt, err := ns.key.Open(nil, ns.nextIV(), ciphertext, ns.hash)
	if err != nil {
		return nil, err
	}
	ns.authenticate(ciphertext)
	return pt, nil
}

func (ns *noiseState) mixSharedSecret(priv, pub [32]byte) error {
	secret, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return fmt.Errorf("failed to do x25519 scalar multiplication: %w", err)
	}
	return ns.mixIntoKey(secret)
}

func (ns *noiseState) mixIntoKey(data []byte) error {
	ns.counter = 0
	write, read, err := extractAndExpand(ns.salt, data)
	if err != nil {
		return err
	}
	ns.salt = write
	ns.key, err = gcmutil.Prepare(read)
	return err
}

// split returns the transport ciphers: the server reads with the client's write key
// (the first HKDF output) and writes with the client's read key.
func (ns *noiseState) split() (read, write cipher.AEAD, err error) {
	clientWrite, clientRead, err := extractAndExpand(ns.salt, nil)
	if err != nil {
		return nil, nil, err
	}
	if read, err = gcmutil.Prepare(clientWrite); err != nil {
		return nil, nil, err
	}
	if write, err = gcmutil.Prepare(clientRead); err != nil {
		return nil, nil, err
	}
	return read, write, nil
}

func extractAndExpand(salt, data []byte) (write, read []byte, err error) {
	h := hkdf.New(sha256.New, data, salt, nil)
	write = make([]byte, 32)
	read = make([]byte, 32)
	if _, err = io.ReadFull(h, write); err != nil {
		return nil, nil, fmt.Errorf("failed to read write key: %w", err)
	}
	if _, err = io.ReadFull(h, read); err != nil {
		return nil, nil, fmt.Errorf("failed to read read key: %w", err)
	}
	return write, read, nil
}

func generateIV(count uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], count)
	return iv
}

// errBadHeader is returned when a client's first frame does not start with the WA header.
var errBadHeader = errors.New("waemu: connection does not start with the WA header")

// frameReader splits the websocket byte stream into length-prefixed frames. The first
// frame of a connection is preceded by socket.WAConnHeader.
type frameReader struct {
	buf        []byte
	sawHeader  bool
	headerSeen []byte
}

// push appends websocket data and returns the complete frames it finished.
func (fr *frameReader) push(data []byte) ([][]byte, error) {
	fr.buf = append(fr.buf, data...)
	if !fr.sawHeader {
		if len(fr.buf) < len(socket.WAConnHeader) {
			return nil, nil
		}
		hdr := fr.buf[:len(socket.WAConnHeader)]
		if !bytes.Equal(hdr[:2], socket.WAConnHeader[:2]) {
			return nil, errBadHeader
		}
		fr.headerSeen = append([]byte{}, hdr...)
		fr.buf = fr.buf[len(socket.WAConnHeader):]
		fr.sawHeader = true
	}
	var frames [][]byte
	for len(fr.buf) >= socket.FrameLengthSize {
		n := int(fr.buf[0])<<16 | int(fr.buf[1])<<8 | int(fr.buf[2])
		if len(fr.buf) < socket.FrameLengthSize+n {
			break
		}
		frame := make([]byte, n)
		copy(frame, fr.buf[socket.FrameLengthSize:socket.FrameLengthSize+n])
		frames = append(frames, frame)
		fr.buf = fr.buf[socket.FrameLengthSize+n:]
	}
	if len(fr.buf) == 0 {
		fr.buf = nil
	}
	return frames, nil
}

// encodeFrame prefixes data with its 3-byte big-endian length.
func encodeFrame(data []byte) []byte {
	out := make([]byte, socket.FrameLengthSize+len(data))
	out[0] = byte(len(data) >> 16)
	out[1] = byte(len(data) >> 8)
	out[2] = byte(len(data))
	copy(out[socket.FrameLengthSize:], data)
	return out
}
