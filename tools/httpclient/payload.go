package httpclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
)

// emptyHash is the hex SHA-256 of the empty string, the payload hash of a
// request without a body.
const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// payloadHash returns the hex SHA-256 of req's body and leaves the body
// unread: it hashes a fresh copy from GetBody when there is one, and
// otherwise reads the body into memory and puts a replayable copy back
// (setting GetBody and ContentLength, so the length is signed too).
func payloadHash(req *http.Request) (string, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return emptyHash, nil
	}
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return "", fmt.Errorf("copy body: %w", err)
		}
		defer body.Close()
		h := sha256.New()
		if _, err := io.Copy(h, body); err != nil {
			return "", fmt.Errorf("hash body: %w", err)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	buf, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	req.Body, _ = req.GetBody()
	req.ContentLength = int64(len(buf))
	if len(buf) == 0 {
		req.Body, req.GetBody = http.NoBody, nil
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), nil
}
